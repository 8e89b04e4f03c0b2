"""The registry: models register themselves, every name builds its model, the package exports
them, and a model registered from outside works like the package's own."""

import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers
from model_sample import DEEPER_TWINS, LARGER_MEMBERS, family_sample
from published_layout import assert_same_outputs, random_images, randomize_weights

import keras_nets
from keras_nets import builder, create_model, finetune, get_config, list_models, registry

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too

MODEL_NAMES = list_models()


def test_list_models_follows_the_module_list_and_each_modules_own_order():
    assert MODEL_NAMES[:4] == ["xception", "inception_v3", "resnet50", "resnet101"]
    assert MODEL_NAMES[4:9] == [
        "resnet152",
        "resnet50_v2",
        "resnet101_v2",
        "resnet152_v2",
        "mobilenet_v2",
    ]
    assert MODEL_NAMES[-7:] == [
        "convnext_tiny",
        "convnext_small",
        "convnext_base",
        "convnext_large",
        "convnext_xlarge",
        "shufflenet_v2",
        "alexnet",
    ]
    assert len(MODEL_NAMES) == len(set(MODEL_NAMES)) == 42


def test_what_the_source_declares_is_what_the_registry_holds():
    """The command line checks --size against the facts read from the model modules' source
    (`registry.declared`, before Keras loads), shared `**ENTRY` dicts included (densenet's)."""
    for name in list_models():
        declared, config = registry.declared(name), get_config(name)
        assert (declared["min_size"], declared["default_size"]) == (
            config.min_size,
            config.default_size,
        ), name


def test_list_models_takes_timm_s_filter_patterns_and_pretrained():
    assert list_models("mobilenet*") == [
        "mobilenet_v2",
        "mobilenet",
        "mobilenet_v3_small",
        "mobilenet_v3_large",
    ]
    assert list_models(["vgg*", "*resnet*"]) == [
        "resnet50",
        "resnet101",
        "resnet152",
        "resnet50_v2",
        "resnet101_v2",
        "resnet152_v2",
        "vgg16",
        "vgg19",
        "inception_resnet_v2",
    ]
    assert list_models("DenseNet12?") == ["densenet121"]
    assert list_models("") == list_models([]) == MODEL_NAMES
    assert list_models(pretrained=False) == ["shufflenet_v2", "alexnet"]
    assert list_models("*net*", pretrained=True) == [
        n for n in MODEL_NAMES if "net" in n and n not in ("shufflenet_v2", "alexnet")
    ]


@pytest.mark.parametrize("filter", [True, 1, None, ["vgg*", 2]])
def test_a_filter_that_is_not_a_pattern_is_a_type_error_never_silently_true(filter):
    with pytest.raises(TypeError, match="filter=.*: expected an fnmatch pattern"):
        list_models(filter)


def test_import_keras_nets_and_the_model_names_import_neither_keras_nor_tensorflow():
    """`import keras_nets` and `registry.MODELS` names (e.g. for `keras-nets weights`) read the
    model modules' declarations without importing them; they agree with the imported registry."""
    code = (
        "import json, sys, keras_nets\n"
        "from keras_nets import pretrained  # as `keras-nets weights` does\n"
        "names = list(keras_nets.registry.MODELS)\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')]\n"
        "print(json.dumps([names, heavy]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [MODEL_NAMES, []]


@pytest.fixture
def tiny_net():
    """A network registered from here, as a user's own module would; unregistered afterwards."""

    @keras_nets.register_model(
        "tiny_net",
        default_size=32,
        min_size=16,
        preprocessing="tf",
        published_weights=False,
        unfreeze_prefixes=("tiny_conv2",),
    )
    def TinyNet(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        name="tiny_net",
    ):
        """A two-convolution network for the registry tests."""
        build = builder.start("tiny_net", locals())
        x = layers.Conv2D(8, 3, strides=2, name="tiny_conv1")(build.input)
        x = layers.Conv2D(16, 3, strides=2, name="tiny_conv2")(x)
        return build.finish(build.top(x))

    yield TinyNet
    registry.unregister_model("tiny_net")


def test_a_model_registered_from_outside_works_like_the_packages_own(tiny_net):
    assert list_models() == [*MODEL_NAMES, "tiny_net"]
    config = get_config("tiny_net")
    assert (config.module_name, config.builder, config.default_size) == (__name__, "TinyNet", 32)
    model = create_model("tiny_net", weights=None, classes=3)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 3)
    features = create_model("tiny_net", include_top=False, input_shape=(16, 16, 3), pooling="avg")
    assert features.output_shape == (None, 16)
    assert np.allclose(config.preprocess_input(np.full((1, 2, 2, 3), 255.0)), 1.0)
    with pytest.raises(ValueError, match=r"input_shape=\(8, 8, 3\): tiny_net needs .* at least 16"):
        create_model("tiny_net", include_top=False, input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="no published ImageNet weights exist for tiny_net"):
        create_model("tiny_net", weights="imagenet")
    classifier = finetune.build_classifier("tiny_net", classes=2, weights=None)
    assert finetune.unfreeze_top(classifier, "tiny_conv2") == 1  # the base: input, conv1, conv2


def test_unregistering_restores_the_registry(tiny_net):
    registry.unregister_model("tiny_net")
    assert list_models() == MODEL_NAMES
    with pytest.raises(ValueError, match="model='tiny_net' is not a keras_nets model"):
        get_config("tiny_net")


def test_a_taken_name_cannot_be_registered_again():
    with pytest.raises(ValueError, match="model='resnet50' is registered already, by ResNet50"):
        keras_nets.register_model("resnet50", default_size=1, min_size=1, preprocessing="tf")(len)


def test_an_unknown_preprocessing_mode_is_refused():
    with pytest.raises(ValueError, match="preprocessing='bgr': expected one of"):
        keras_nets.register_model("x", default_size=1, min_size=1, preprocessing="bgr")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_builder_is_exported_by_the_package(name):
    config = get_config(name)
    assert callable(getattr(config.module, config.builder))
    assert getattr(keras_nets, config.builder) is getattr(config.module, config.builder)
    assert config.builder in keras_nets.__all__
    # config.preprocess_input is the module's own:
    pixels = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    assert_same_outputs(
        config.preprocess_input(pixels), config.module.preprocess_input(pixels), rtol=0
    )


def test_create_model_passes_arguments_to_the_builder():
    model = create_model("mobilenet_v3_small", weights=None, include_top=False, pooling="avg")
    assert model.output_shape == (None, 576)


def test_unknown_name_is_a_value_error_listing_the_names():
    expected = r"model='nope' is not a keras_nets model; expected one of: xception, .*alexnet"
    with pytest.raises(ValueError, match=expected):
        get_config("nope")
    with pytest.raises(ValueError, match="model='nope'"):
        create_model("nope")


@pytest.mark.parametrize("deeper, twin", DEEPER_TWINS.items())
def test_a_deeper_twin_is_its_twins_builder_at_another_depth(deeper, twin):
    """What lets the whole-network tests take the twin for it (tests/model_sample.py): the same
    module, preprocessing, block prefixes for unfreeze_top, and feature levels (the deepest is
    Grad-CAM's layer) each in the same stage: ResNet-152's P4 is the last block of stage 4 as
    ResNet-101's is (conv4_block36_out, conv4_block23_out), and EfficientNet-B7's P3 the last of
    stage 3 as B0's is (block3g_add, block3b_add). That each declared layer is the last block
    output at its stride is checked for every model, deeper twins included (tests/core/
    test_features.py); each member's weights, against keras.applications', in its family's
    tests (tests/models/)."""
    a, b = get_config(deeper), get_config(twin)
    assert (a.module_name, a.preprocessing, prefixes(a), stages(a.feature_layers)) == (
        b.module_name,
        b.preprocessing,
        prefixes(b),
        stages(b.feature_layers),
    )


def stages(feature_layers):
    """Each level's layer with the block's place in its stage left out: conv4_block#_out for
    conv4_block23_out, block3 for block3b_add, convnext_*_stage_2_block#_add for
    convnext_small_stage_2_block_26_add (`without_variant`); any other layer's name is itself."""
    return {
        level: re.sub(r"^(block\d+)[a-z]+_\w+$|_block_?\d+_", stage_of, without_variant(layer))
        for level, layer in feature_layers.items()
    }


def prefixes(config):
    return tuple(without_variant(prefix) for prefix in config.unfreeze_prefixes)


def without_variant(name):
    """ConvNeXt's layer names start with the variant (Keras' default model name, which Keras
    prefixes to every layer): convnext_*_downsampling_block_2 for convnext_large_downsampling_..."""
    return re.sub(r"^convnext_[a-z]+_", "convnext_*_", name)


def stage_of(match):
    return match.group(1) or "_block#_"


@pytest.mark.parametrize("name", family_sample())  # tests/model_sample.py
def test_every_model_is_plain_keras_and_round_trips_through_a_keras_file(name, tmp_path):
    """No custom layers but ConvNeXt's LayerScale (keras_nets.core.layers, registered with Keras
    by `import keras_nets`: tests/models/test_convnext.py loads one after a bare import): a saved
    model loads anywhere Keras runs, keras_nets not needed for the others. Built at the model's
    smallest input size."""
    config = get_config(name)
    size = max(config.min_size, 32)
    model = create_model(
        name, weights=None, include_top=False, input_shape=(size, size, 3), pooling="avg"
    )
    assert len(model.output_shape) == 2  # the smallest input still pools to a feature vector
    own = {"keras_nets.core.layers"} if config.module_name == "keras_nets.convnext" else set()
    assert all(
        type(layer).__module__.startswith("keras.") or type(layer).__module__ in own
        for layer in model.layers
    )
    randomize_weights(model)
    images = random_images((2, size, size, 3))
    model.save(tmp_path / f"{name}.keras")
    reloaded = keras.saving.load_model(tmp_path / f"{name}.keras")
    assert_same_outputs(reloaded(images, training=False), model(images, training=False), rtol=0)


@pytest.mark.parametrize("name", [*family_sample(), *LARGER_MEMBERS])  # tests/model_sample.py
def test_unfreeze_top_accepts_every_declared_block_prefix(name):
    """Each prefix names a layer of the base where a block starts: from it on every weighted
    layer (BatchNorm excepted) trains, none before it does, and the trained part hangs off one
    frozen layer (or joins frozen branches in the named layer itself), so no block is cut."""
    config = get_config(name)
    assert config.unfreeze_prefixes, f"{name} declares no block prefix for unfreeze_top"
    size = max(config.min_size, 32)
    model = finetune.build_classifier(name, classes=2, weights=None, image_size=size)
    base = finetune.base_model_of(model)
    index = {layer.name: i for i, layer in enumerate(base.layers)}
    for prefix in config.unfreeze_prefixes:
        finetune.unfreeze_top(model, prefix)
        first = next(
            i
            for i, layer in enumerate(base.layers)
            if layer.name == prefix or layer.name.startswith(f"{prefix}_")
        )
        for i, layer in enumerate(base.layers):
            if layer.weights and not isinstance(layer, layers.BatchNormalization):
                assert layer.trainable == (i >= first), (prefix, layer.name)
        assert any(layer.trainable_weights for layer in base.layers[first:]), prefix
        crossing = [
            (parent, layer.name)
            for layer in base.layers[first:]
            for parent in inbound_layer_names(layer, index)
            if index[parent] < first
        ]
        sources = {parent for parent, _ in crossing}
        targets = {child for _, child in crossing}
        starts_a_block = (
            len(sources) == 1
            or (targets == {base.layers[first].name} and not base.layers[first].weights)
            or all(is_cell_output(base.get_layer(source), index) for source in sources)
        )
        assert starts_a_block, (
            f"{prefix} cuts a block: frozen {sorted(sources)} feed {sorted(targets)}"
        )


# NASNet's cells each take the outputs of the two cells before them, so a cell hangs off two
# frozen cell outputs, some through the weightless ReLU Keras leaves unnamed before a convolution.
CELL_OUTPUT = re.compile(r"^(normal|reduction)_concat_\w+$")


def is_cell_output(layer, index):
    """A NASNet cell's output, or a weightless activation of one."""
    if CELL_OUTPUT.match(layer.name):
        return True
    parents = inbound_layer_names(layer, index)
    return (
        isinstance(layer, layers.Activation)
        and bool(parents)
        and all(CELL_OUTPUT.match(parent) for parent in parents)
    )


def inbound_layer_names(layer, index):
    """The names of the layers (in `index`) whose outputs `layer` takes in its model's graph,
    looking through plain operations such as ShuffleNet's channel split and shuffle."""
    names = set()
    for node in layer._inbound_nodes:
        for parent in node.parent_nodes:
            operation = parent.operation
            if operation.name in index:
                names.add(operation.name)
            else:
                names |= inbound_layer_names(operation, index)
    return names
