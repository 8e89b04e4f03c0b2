"""compile_for_inference: every model runs on each runtime with the Keras model's outputs.

Kernels, gammas and betas are random and BatchNormalization statistics calibrated on images, so
folding the normalisations changes every folded kernel and the outputs vary with the input; they
must still match Keras' to a relative 1e-4 of the largest output (5e-4 across the registry).
The runtimes are in the test extra: a missing one fails these tests (see required_runtimes.py).
"""

import ast
import configparser
import os
import pathlib

import keras
import numpy as np
import pytest
from informative_weights import CALIBRATION_IMAGES, assert_informative, calibrate_batch_norm
from informative_weights import random_images as photo_like_images
from keras import layers
from model_sample import NEWER_FAMILIES, family_sample
from published_layout import assert_same_outputs, random_images, randomize_weights
from required_runtimes import require_runtime

from keras_nets import compile_for_inference, get_config, inference
from keras_nets.inference import folding, runtimes, writers

PACKAGE = pathlib.Path(inference.__file__).parent


def small_model(name, **kwargs):
    """Registry model `name`, features at a small input size (fast to test), random kernels,
    gammas and betas (every folded kernel changes), BatchNorm statistics calibrated on images so
    that the features vary with the input (with random statistics they are all but constant)."""
    config = get_config(name)
    size = max(config.min_size, 64)
    model = config.build(weights=None, include_top=False, input_shape=(size, size, 3), **kwargs)
    randomize_weights(model)
    calibrate_batch_norm(model, model_images(model, CALIBRATION_IMAGES, seed=100))
    return model


def model_images(model, count, seed=0):
    """Photo-like images at the model's input size, as it takes them: 0-255 pixels for a model
    that scales its own input (EfficientNet, ConvNeXt: fed [-1, 1], ConvNeXt's normalised input
    is all but constant and so are its features, which no BatchNorm recentres), else [-1, 1]."""
    images = photo_like_images(count, tuple(model.input_shape[1:3]), seed)
    return images if writers.takes_raw_pixels(model) else images / 127.5 - 1.0


def batch_norms(model):
    return [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]


def conv_bn_model():
    """Every foldable kind of convolution, each followed by a BatchNormalization."""
    inputs = keras.Input((12, 12, 3))
    x = layers.Conv2D(8, 3, use_bias=False, name="conv")(inputs)
    x = layers.BatchNormalization(name="conv_bn")(x)
    x = layers.ReLU()(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise")(x)
    x = layers.BatchNormalization(center=False, name="depthwise_bn")(x)
    x = layers.SeparableConv2D(6, 3, padding="same", name="separable")(x)
    x = layers.BatchNormalization(scale=False, epsilon=0.01, name="separable_bn")(x)
    x = layers.Conv2D(4, 1, groups=2, name="grouped")(x)
    x = layers.BatchNormalization(name="grouped_bn")(x)
    return keras.Model(inputs, x)


def tiny_model():
    """A convolution and its BatchNormalization: quick to convert, for what needs no network."""
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, layers.BatchNormalization()(layers.Conv2D(4, 3)(inputs)))


# --- Every model, every runtime ------------------------------------------------------------------


# The deepest models are longer stacks of what their twins already convert: converting them too
# costs CI minutes (InceptionResNetV2 alone two, ResNet50 45 s, VGG19 28 s on CI's 2 cores:
# tf2onnx's time grows with the node count) and proves no further layer. Each runs folded in
# Keras instead, and must use only the kinds of layer its twins convert (the next test), so a new
# kind of layer in it fails there.
CONVERTED_BY_TWINS = {
    "resnet50": ("xception", "mobilenet_v2"),
    "vgg19": ("vgg16",),
    "inception_resnet_v2": ("inception_v3", "xception", "mobilenet_v3_small"),
    # NASNetLarge is NASNetMobile's kinds of layer, wider and deeper: converting it took 125 s
    # here (NASNetMobile 42 s), as two helpers' tests shared 2 cores.
    "nasnet_large": ("nasnet_mobile",),
}
# A family's deeper members (tests/model_sample.py DEEPER_TWINS) are neither converted nor folded
# here: each is its first member's builder at another depth (tests/core/test_registry.py), so it
# has its first member's kinds of layer and folds the same pairs, and building them cost CI about
# 90 s of the two cores (ConvNeXt-XLarge alone 24 s at 64 px). Their layouts and weights are
# proved in their family's tests (tests/models/).
# NEWER_FAMILIES (tests/model_sample.py) run theirs in tests/inference/test_int8.py, in float32 and
# int8 on one conversion.
CONVERTED = [
    name
    for name in family_sample()
    if name not in CONVERTED_BY_TWINS and name not in NEWER_FAMILIES
]


@pytest.mark.parametrize("name", CONVERTED)
def test_every_registry_model_matches_keras_on_onnx_runtime(name):
    require_runtime("onnxruntime")
    model = small_model(name)
    images = model_images(model, 3)

    fast = compile_for_inference(model, "onnxruntime")

    assert folding.foldable_pairs(fast.model) == {}, "a foldable BatchNormalization is left"
    if folding.foldable_pairs(model):
        assert len(batch_norms(fast.model)) < len(batch_norms(model))
    expected = model(images, training=False)  # what model.predict computes, without its tracing
    assert_informative(expected, f"{name} features")
    # 5e-4: with features that vary with the input, float rounding through MobileNetV3-Large's
    # hard-swish stack reaches 1.2e-4 of the largest output; the others stay under 1e-4.
    assert_same_outputs(fast.predict(images, batch_size=2), expected, 5e-4)


def layer_kinds(model):
    """What decides how a layer converts: its class and, for a convolution, its activation."""
    kinds = set()
    for layer in model._flatten_layers(include_self=False):
        activation = layer.get_config().get("activation")
        kinds.add((type(layer).__name__, activation if isinstance(activation, str) else None))
    return kinds


@pytest.mark.parametrize("name", list(CONVERTED_BY_TWINS))
def test_the_deepest_models_fold_exactly_and_use_only_layers_their_twins_convert(name):
    model = small_model(name)
    images = model_images(model, 3)
    folded = folding.fold_batch_norms(model)
    assert folding.foldable_pairs(folded) == {}
    if batch_norms(model):  # VGG has none
        assert len(batch_norms(folded)) < len(batch_norms(model))
    expected = model(images, training=False)
    assert_informative(expected, f"{name} features")
    assert_same_outputs(folded(images, training=False), expected, 1e-4)

    twins = CONVERTED_BY_TWINS[name]
    assert set(twins) <= {*CONVERTED, *NEWER_FAMILIES}
    converted_kinds = set().union(
        *(layer_kinds(get_config(twin).build(weights=None)) for twin in twins)
    )
    assert layer_kinds(model) - converted_kinds == set(), f"{name} has layers {twins} never convert"


@pytest.mark.parametrize("runtime", runtimes.RUNTIMES)
def test_each_runtime_matches_keras_whole_or_split_per_core(runtime):
    """On 3 threads, whatever the machine: batches of 1 and 2 run whole, a batch of 5 in three
    parts side by side."""
    require_runtime(runtime)
    model = small_model("mobilenet_v2", alpha=0.35)
    fast = compile_for_inference(model, runtime, threads=3)
    assert (fast.runtime, fast.threads) == (runtime, 3)
    for count in (1, 2, 5):
        images = model_images(model, count, seed=count)
        expected = model(images, training=False)
        assert_same_outputs(fast.predict(images, batch_size=8), expected, 1e-4)
    assert_informative(expected, "mobilenet_v2 features")  # so the rows' order matters
    assert_same_outputs(fast(images, batch_size=2), expected, 1e-4)  # 2 + 2 + 1, joined in order


def test_split_per_core_runs_a_large_batch_as_one_part_per_core_in_order():
    calls = []

    def run_whole(batch):
        calls.append(("whole", len(batch)))
        return [batch * 10]

    def run_parts(parts):
        calls.append(("parts", [len(part) for part in parts]))
        return [[part * 10] for part in parts]

    run = runtimes.split_per_core(3, run_whole, run_parts)
    batch = np.arange(7.0)

    assert np.array_equal(run(batch)[0], batch * 10)
    assert np.array_equal(run(batch[:2])[0], batch[:2] * 10)
    assert calls == [("parts", [3, 2, 2]), ("whole", 2)]
    assert runtimes.split_per_core(1, run_whole, run_parts) is run_whole


# --- Which runtime, how many threads -------------------------------------------------------------


def make_unavailable(monkeypatch, *names):
    for name in names:
        monkeypatch.setattr(runtimes.get_runtime(name), "is_installed", lambda: False)


def test_auto_prefers_onnx_runtime_then_openvino_then_tensorflow(monkeypatch):
    """The order docs/guides/fast-inference.md documents; the extra runtimes are installed by the test extra."""
    for name in runtimes.RUNTIMES:
        require_runtime(name)
    assert runtimes.RUNTIMES == ("onnxruntime", "openvino", "tensorflow")
    model = tiny_model()
    assert compile_for_inference(model).runtime == "onnxruntime"
    make_unavailable(monkeypatch, "onnxruntime")
    assert compile_for_inference(model).runtime == "openvino"
    make_unavailable(monkeypatch, "openvino")
    assert compile_for_inference(model).runtime == "tensorflow"
    make_unavailable(monkeypatch, "tensorflow")
    with pytest.raises(ImportError, match=r"no inference runtime is installed.*keras-nets\[onnx\]"):
        compile_for_inference(model)


def test_threads_default_to_the_cores_this_process_may_run_on(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5, 7, 11}, raising=False)
    assert inference.thread_count() == 5
    assert compile_for_inference(tiny_model(), "tensorflow").threads == 5


def test_backend_is_a_deprecated_name_for_runtime():
    with pytest.warns(DeprecationWarning, match="runtime="):
        fast = compile_for_inference(conv_bn_model(), backend="tensorflow")
    with pytest.warns(DeprecationWarning, match=".runtime"):
        assert fast.backend == "tensorflow"
    with pytest.raises(ValueError, match="give only runtime"), pytest.warns(DeprecationWarning):
        compile_for_inference(conv_bn_model(), "openvino", backend="tensorflow")


# --- The runtime modules -------------------------------------------------------------------------


@pytest.mark.parametrize("name", runtimes.RUNTIMES)
def test_each_runtime_module_declares_its_name_extra_availability_and_runner(name):
    module = runtimes.get_runtime(name)
    extras = configparser.ConfigParser()
    extras.read(PACKAGE.parents[1] / "setup.cfg")
    extras = extras["options.extras_require"]

    assert name == module.NAME
    assert callable(module.is_installed) and callable(module.compile)
    if module.EXTRA is not None:
        wanted = set(extras[module.EXTRA].split())
        assert wanted <= set(extras["test"].split()), (
            f"the test extra lacks {module.EXTRA}'s packages"
        )


def module_level_imports(path):
    """Top-level module names imported by `path` outside functions and classes."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_inference_module_imports_tensorflow_or_a_runtime_when_imported(path):
    heavy = {"tensorflow", "onnxruntime", "openvino", "onnx", "tf2onnx"}
    assert module_level_imports(path) & heavy == set()


# --- BatchNormalization folding ------------------------------------------------------------------


def test_folds_each_convolution_kind_exactly():
    model = conv_bn_model()
    randomize_weights(model)
    images = random_images((2, 12, 12, 3))

    folded = inference.fold_batch_norms(model)

    assert batch_norms(folded) == []
    assert all(
        folded.get_layer(name).use_bias for name in ("conv", "depthwise", "separable", "grouped")
    )
    assert_same_outputs(folded.predict(images, verbose=0), model.predict(images, verbose=0), 1e-5)


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_an_input_normalization_becomes_constants_the_runtime_needs_no_input_for(kind):
    """EfficientNet's Normalization of the channels: its mean and variance are weights, and the
    tensors it computes with are captured ones, which tf2onnx made into graph inputs the runtime
    demanded. The fold writes it as a Rescaling whose scale and offset are constants, in a
    Sequential model too (where nothing else folds)."""
    require_runtime("onnxruntime")
    stack = [
        keras.Input((12, 12, 3)),
        layers.Normalization(name="normalization"),
        layers.Conv2D(4, 3, name="conv"),
        layers.BatchNormalization(name="conv_bn"),
    ]
    if kind == "sequential":
        model = keras.Sequential(stack)
    else:
        x = stack[0]
        for layer in stack[1:]:
            x = layer(x)
        model = keras.Model(stack[0], x)
    randomize_weights(model)
    model.get_layer("normalization").set_weights(
        [np.array([120.0, 110.0, 100.0]), np.array([3600.0, 3000.0, 4900.0]), np.array(0)]
    )
    model.get_layer("normalization").finalize_state()  # as loading a weights file does
    images = random_images((2, 12, 12, 3)) * 127.5 + 127.5  # pixels: the mean matters

    fast = compile_for_inference(model, "onnxruntime")

    assert isinstance(fast.model.get_layer("normalization"), layers.Rescaling)
    assert_same_outputs(fast.predict(images), model(images, training=False), 1e-5)


def test_leaves_batch_norms_that_cannot_be_folded():
    inputs = keras.Input((8, 8, 3))
    shared = layers.Conv2D(4, 3, name="shared")(inputs)  # two consumers: its BN cannot absorb it
    a = layers.BatchNormalization(name="after_shared")(shared)
    b = layers.Conv2D(4, 3, activation="relu", name="activated")(inputs)
    b = layers.BatchNormalization(name="after_activation")(b)
    c = layers.BatchNormalization(name="after_input")(layers.Conv2D(4, 3)(inputs) + shared)
    model = keras.Model(inputs, [a, b, c, shared])
    randomize_weights(model)
    images = random_images((2, 8, 8, 3))

    folded = inference.fold_batch_norms(model)

    assert {bn.name for bn in batch_norms(folded)} == {
        "after_shared",
        "after_activation",
        "after_input",
    }
    for ours, theirs in zip(folded.predict(images, verbose=0), model.predict(images, verbose=0)):
        assert_same_outputs(ours, theirs, 1e-5)


def test_folds_inside_nested_models_and_leaves_the_original_alone():
    inner = conv_bn_model()
    inputs = keras.Input((12, 12, 3))
    model = keras.Model(inputs, layers.GlobalAveragePooling2D()(inner(inputs)))
    randomize_weights(inner)
    before = [w.copy() for w in model.get_weights()]
    images = random_images((2, 12, 12, 3))

    fast = compile_for_inference(model, "tensorflow")

    nested = [layer for layer in fast.model.layers if isinstance(layer, keras.Model)]
    assert len(nested) == 1 and batch_norms(nested[0]) == []
    assert_same_outputs(fast.predict(images), model.predict(images, verbose=0), 1e-5)
    assert len(batch_norms(inner)) == 4
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_a_model_with_several_outputs_returns_a_list():
    inputs = keras.Input((8, 8, 3))
    x = layers.BatchNormalization()(layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, [x, layers.GlobalAveragePooling2D()(x)])
    randomize_weights(model)
    images = random_images((3, 8, 8, 3))

    outputs = compile_for_inference(model, "tensorflow").predict(images, batch_size=2)

    assert isinstance(outputs, list) and len(outputs) == 2
    for ours, theirs in zip(outputs, model.predict(images, verbose=0)):
        assert_same_outputs(ours, theirs, 1e-5)


# --- Misuse --------------------------------------------------------------------------------------


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.conv = layers.Conv2D(4, 3)

    def call(self, x):
        return self.conv(x)


def test_rejects_an_unknown_runtime_listing_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"runtime='tpu'.*'auto'.*'onnxruntime', 'openvino', 'tensorflow'"
    ):
        compile_for_inference(conv_bn_model(), "tpu")


def test_rejects_a_missing_runtime_naming_the_extra(monkeypatch):
    make_unavailable(monkeypatch, "openvino")
    with pytest.raises(
        ImportError, match=r"runtime='openvino' is not installed.*keras-nets\[openvino\]"
    ):
        compile_for_inference(conv_bn_model(), "openvino")


@pytest.mark.parametrize(
    "model, message",
    [
        ("xception", r"model='xception': expected a keras.Model"),
        (
            Subclassed(),
            r"model='subclassed' is a subclassed Subclassed: expected a Functional or Sequential",
        ),
        (
            keras.Sequential([layers.Dense(2)], name="no_input"),
            r"model='no_input' has no input yet",
        ),
    ],
    ids=["string", "subclassed", "sequential-without-input"],
)
def test_rejects_what_is_not_a_model_with_a_graph(model, message):
    with pytest.raises(ValueError, match=message):
        compile_for_inference(model, "tensorflow")


def test_rejects_bad_threads_images_of_the_wrong_shape_and_a_bad_batch_size():
    with pytest.raises(ValueError, match=r"threads=0: expected a positive integer"):
        compile_for_inference(conv_bn_model(), "tensorflow", threads=0)
    fast = compile_for_inference(conv_bn_model(), "tensorflow")
    with pytest.raises(ValueError, match=r"x has shape \(2, 10, 10, 3\).*\(None, 12, 12, 3\)"):
        fast.predict(np.zeros((2, 10, 10, 3)))
    with pytest.raises(ValueError, match="empty batch"):
        fast.predict(np.zeros((0, 12, 12, 3)))
    with pytest.raises(ValueError, match="batch_size=0"):
        fast.predict(np.zeros((1, 12, 12, 3)), batch_size=0)


def test_the_fold_writes_convnext_s_unconvertible_layers_as_layers_tf2onnx_converts():
    """A Conv2D with one group per channel becomes a DepthwiseConv2D (its kernel transposed:
    exact, with a BatchNormalization folded in too) and an exact GELU an Activation of
    `gelu_erf` (to float rounding); the LayerNormalization stays."""
    inputs = keras.Input((9, 9, 6))
    x = layers.Conv2D(6, 7, padding="same", groups=6, name="grouped_depthwise")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name="layernorm")(x)
    x = layers.Activation("gelu", name="gelu")(x)
    model = keras.Model(inputs, x)
    randomize_weights(model)
    folded = folding.fold_batch_norms(model)
    kinds = {layer.name: type(layer).__name__ for layer in folded.layers[1:]}
    assert kinds == {
        "grouped_depthwise": "DepthwiseConv2D",
        "layernorm": "LayerNormalization",
        "gelu": "Activation",
    }
    assert folded.get_layer("gelu").activation is folding.gelu_erf
    images = random_images((2, 9, 9, 6)) * 3
    assert_same_outputs(folded(images), model(images, training=False), rtol=1e-6)
