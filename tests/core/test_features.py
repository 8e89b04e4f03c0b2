"""Feature extraction: `create_model(name, features_only=True)` gives every registry model's
feature maps by pyramid level, equal to the same layers of the model, at any accepted input size;
`feature_info` describes them; bad requests are one clear ValueError each."""

import functools
import math
import re

import keras
import numpy as np
import pytest
from informative_weights import calibrate_batch_norm
from keras import layers
from model_sample import SAMPLED_OUT, family_sample
from published_layout import assert_same_outputs, random_images, randomize_weights, write_legacy_h5
from readme_table import assert_row_describes, feature_levels_cell, table_rows

import keras_nets
from keras_nets import create_model, features, get_config, list_models
from keras_nets.weights import loading

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too

MODEL_NAMES = list_models(features_only=True)


# An odd non-square size: every stride rounds, and height and width round differently.
NON_SQUARE = (225, 300)
# Models whose stride-2 padding follows the static input size (docs/guides/features.md).
PADDED_FOR_THEIR_SIZE = {
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    *list_models("efficientnet_b?"),
}
# Models built for one size only: NASNet refuses a None height or width (its cells pad and crop
# by the static shape, builder.start(static=True)), so each size gets its own build.
STATIC_ONLY = set(list_models("nasnet_*"))
# NASNet's cells each take the outputs of the two cells before them, so no cell's output is the
# only path onward (a cut of the graph): there a level is a cell's output (its concatenation)
# and no later cell's output is at the same stride.
CELL_OUTPUT = re.compile(r"^(normal|reduction)_concat_\w+$")


# Models with no stride-2 map (stems that stride by 4): no P1.
NO_STRIDE_2 = {"alexnet", *list_models("convnext_*")}


def sizes(name):
    """The model's default size, 257 (odd: every level rounds) and NON_SQUARE."""
    default = get_config(name).default_size
    return [(default, default), (257, 257), NON_SQUARE]


@functools.lru_cache(maxsize=2)
def models_at(name, input_shape):
    """The model without top and its features model at `input_shape`, sharing random weights.

    The square sizes share one pair built for any size ((None, None, 3)): one build serves both
    (the cases of a model run one after another, so two cached pairs are enough). The non-square
    size gets a pair built at that very shape: a MobileNet built for any size pads its stride-2
    steps differently from one built for an odd size (as keras.applications' `correct_pad` does),
    so the static build is the one to check at an odd size."""
    model = create_model(name, include_top=False, weights=None, input_shape=input_shape)
    randomize_weights(model)
    feature_model = create_model(name, features_only=True, weights=None, input_shape=input_shape)
    feature_model.set_weights(model.get_weights())
    for layer in feature_model.layers:  # EfficientNet's: set_weights leaves it computing with 0, 1
        if isinstance(layer, layers.Normalization):
            layer.finalize_state()
    return model, feature_model


CASES = [(name, size) for name in family_sample(MODEL_NAMES) for size in sizes(name)]


def test_every_model_supports_features_only():
    assert list_models() == MODEL_NAMES and len(MODEL_NAMES) == 42


@pytest.mark.parametrize("name, size", CASES, ids=[f"{n}-{h}x{w}" for n, (h, w) in CASES])
def test_feature_maps_are_the_declared_layers_of_the_model_at_any_size(name, size):
    """Keys P1..P5 (P2..P5 for AlexNet and ConvNeXt, whose stems stride by 4), each at its stride and channel count, equal to the
    declared layers' outputs of the model without top carrying the same weights."""
    height, width = size
    built_for = (*size, 3) if size == NON_SQUARE or name in STATIC_ONLY else (None, None, 3)
    model, feature_model = models_at(name, built_for)

    declared = get_config(name).feature_layers
    expected_keys = ["P2", "P3", "P4", "P5"] if name in NO_STRIDE_2 else list(features.LEVELS)
    assert list(declared) == expected_keys
    assert list(feature_model.output) == expected_keys

    reference = keras.Model(
        model.input, [model.get_layer(declared[k]).output for k in expected_keys]
    )
    image = random_images((1, height, width, 3))
    maps = feature_model(image, training=False)
    assert isinstance(maps, dict)
    info = features.feature_info(name)  # built once per model, then cached
    for level, expected in zip(expected_keys, reference(image, training=False)):
        stride = 2 ** int(level[1:])
        shape = tuple(maps[level].shape)
        assert shape[-1] == model.get_layer(declared[level]).output.shape[-1]
        # size / stride, rounded up by "same" padding, down by "valid" convolutions and pools
        for pixels, cells in ((height, shape[1]), (width, shape[2])):
            assert pixels / stride - 5 <= cells <= math.ceil(pixels / stride), (
                level,
                pixels,
                cells,
            )
        entry = info[expected_keys.index(level)]
        assert entry == {
            "level": level,
            "stride": stride,
            "channels": shape[-1],
            "layer": declared[level],
        }
        assert_same_outputs(maps[level], expected, rtol=1e-6)

    if size == NON_SQUARE and name not in STATIC_ONLY:  # docs/guides/features.md: any size
        _, any_size = models_at(name, (None, None, 3))
        any_size.set_weights(feature_model.get_weights())
        static, dynamic = (
            {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
            for outputs in (maps, any_size(image, training=False))
        )
        same = all(
            static[k].shape == dynamic[k].shape
            and np.allclose(static[k], dynamic[k], rtol=1e-5, atol=1e-5)
            for k in expected_keys
        )
        assert same == (name not in PADDED_FOR_THEIR_SIZE)


def block_outputs(model, input_size):
    """Per layer of `model` (built for a square `input_size`), in graph order: its level (log2 of
    its stride, rounded: "valid" convolutions and padding shift a map by a few cells), its
    output shape, and whether it is a block output: a layer every path from the input to the
    output goes through (a cut of the graph), or the activation of one (Xception activates a
    block's sum at the start of the next block, beside the shortcut); and whether it is a
    residual sum or a concatenation that is such a cut. Read from the graph alone."""
    operations = model.operations
    parents = {
        op.name: {
            parent.operation.name for node in op._inbound_nodes for parent in node.parent_nodes
        }
        for op in operations
    }
    first, last = operations[0].name, operations[-1].name

    def is_cut(name):  # the input cannot be reached from the output without passing `name`
        seen, stack = set(), [last]
        while stack:
            current = stack.pop()
            if current not in seen and current != name:
                seen.add(current)
                stack.extend(parents[current])
        return first not in seen

    cuts = {op.name for op in operations[1:] if is_cut(op.name)}
    rows = []
    # Layers only: a channel shuffle (ShuffleNetV2's `ops.take` after each unit's concatenation)
    # is a fixed permutation of the unit's output, not a layer one could declare.
    for layer in model.layers[1:]:
        shape = tuple(layer.output.shape[1:])
        if len(shape) != 3:
            continue
        activates_a_cut = (
            isinstance(layer, (layers.Activation, layers.ReLU)) and parents[layer.name] <= cuts
        )
        rows.append(
            dict(
                name=layer.name,
                level=round(math.log2(input_size / shape[0])),
                shape=shape,
                block_output=layer.name in cuts or activates_a_cut,
                merge=isinstance(layer, (layers.Add, layers.Concatenate)) and layer.name in cuts,
            )
        )
    return rows


@pytest.mark.parametrize("name", family_sample(MODEL_NAMES))
def test_each_level_is_the_last_block_output_at_its_stride(name):
    """Level Pk is the last block output at stride 2**k, after its activation: a block output, at
    that stride, and no later layer at that stride is another residual sum or concatenation, or
    a block output of the same shape (the next block of the stage, or the activation after it).
    E.g. ResNet50's P3 is res3d_out, not res3c_out; DenseNet's is pool3_relu, not pool3_bn."""
    size = 256  # symbolic shapes only: the model is built, never run
    model = create_model(name, include_top=False, weights=None, input_shape=(size, size, 3))
    assert_each_level_is_the_last_block_output(name, model, size)


@pytest.mark.parametrize("deeper", SAMPLED_OUT)
def test_a_member_left_out_of_the_sample_is_built_once_for_its_own_checks(deeper, monkeypatch):
    """The registry-wide checks that build whole networks take a family's smallest member for
    its deeper and larger ones (tests/model_sample.py); what is each one's own is checked here, on
    one build with weights="imagenet" at its default size: the published file it asks for (the
    download and cache are its twin's, tests/weights/), its README row with its feature-levels
    column, and each declared level the last block output at its stride."""
    asked = []
    monkeypatch.setattr(
        loading, "load_published_weights", lambda _, key, top: asked.append((key, top))
    )
    model = create_model(deeper, weights="imagenet")

    assert asked == [(deeper, True)]
    assert_row_describes(deeper, model)
    config = get_config(deeper)
    if not set(config.feature_layers.values()) <= {layer.name for layer in model.layers}:
        # a level on a layer of the model without top alone (ConvNeXt's P5, the final
        # LayerNormalization, where the top has its own): that model is built too
        size = config.default_size
        model = create_model(deeper, include_top=False, weights=None, input_shape=(size, size, 3))
    assert table_rows()[deeper][-1] == feature_levels_cell(
        [
            (level, model.get_layer(name).output.shape[-1])
            for level, name in config.feature_layers.items()
        ]
    )
    assert_each_level_is_the_last_block_output(deeper, model, config.default_size)


def assert_each_level_is_the_last_block_output(name, model, size):
    """What test_each_level_is_the_last_block_output_at_its_stride says, on `model` (with or
    without its top) built for a square `size`."""
    rows = block_outputs(model, size)
    position = {row["name"]: i for i, row in enumerate(rows)}
    for level, layer in get_config(name).feature_layers.items():
        k = int(level[1:])
        declared = rows[position[layer]]
        assert declared["level"] == k, (level, layer, f"stride 2**{declared['level']}")
        cell = CELL_OUTPUT.match(layer) and not declared["block_output"]
        assert declared["block_output"] or cell, (level, layer, "a connection bypasses it")
        later = [
            row["name"]
            for row in rows[position[layer] + 1 :]
            if row["level"] == k
            and (
                row["merge"]
                or (row["block_output"] and row["shape"] == declared["shape"])
                or (cell and CELL_OUTPUT.match(row["name"]))
            )
        ]
        assert not later, (level, layer, f"later block outputs at stride {2**k}: {later}")


def small_features_model(out_levels=None, weights=None):
    """MobileNetV2 with alpha 0.35 at 96x96, features_only: the small model of the tests below."""
    return create_model(
        "mobilenet_v2",
        features_only=True,
        out_levels=out_levels,
        weights=weights,
        alpha=0.35,
        input_shape=(96, 96, 3),
    )


def test_out_levels_selects_levels_in_pyramid_order():
    model = small_features_model(out_levels=["P5", "P3"])
    assert list(model.output) == ["P3", "P5"]
    assert model.output["P3"].shape == (None, 12, 12, 16)  # 32 * 0.35 rounded to 8: 16


def test_a_weights_file_without_top_loads_into_the_features_model(tmp_path):
    model = create_model(
        "mobilenet_v2", include_top=False, weights=None, alpha=0.35, input_shape=(96, 96, 3)
    )
    randomize_weights(model, seed=1)
    path = write_legacy_h5(model, tmp_path / "notop.h5")
    feature_model = small_features_model(weights=path)
    image = random_images((1, 96, 96, 3))
    expected = model.get_layer("block_12_add").output
    assert_same_outputs(
        feature_model(image)["P4"], keras.Model(model.input, expected)(image), rtol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(include_top=True), r"include_top=True: features_only=True builds the model without"),
        (
            dict(pooling="avg"),
            r"pooling='avg': features_only=True outputs the feature maps unpooled",
        ),
        (
            dict(out_levels=["P6"]),
            r"out_levels=\['P6'\]: expected None or distinct levels among P1, P2, P3, P4, P5",
        ),
        (dict(out_levels=[]), r"out_levels=\[\]: expected None or distinct levels among"),
        (
            dict(input_shape=(31, 64, 3)),
            r"input_shape=\(31, 64, 3\): mobilenet_v2 needs a height and width of at least 32",
        ),
    ],
    ids=["include_top", "pooling", "unknown_level", "no_level", "too_small"],
)
def test_bad_requests_are_one_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model("mobilenet_v2", features_only=True, weights=None, **kwargs)


def test_alexnet_has_no_p1_and_says_which_levels_it_has():
    with pytest.raises(
        ValueError, match=r"out_levels='P1': expected None or distinct levels among P2, P3, P4, P5"
    ):
        create_model("alexnet", features_only=True, out_levels="P1", weights=None)


def test_out_levels_without_features_only_is_refused():
    with pytest.raises(
        ValueError, match=r"out_levels=\['P3'\]: expected None unless features_only=True"
    ):
        create_model("mobilenet_v2", out_levels=["P3"], weights=None)


def test_feature_info_channels_follow_alpha():
    info = keras_nets.feature_info("mobilenet_v2", alpha=0.35)
    assert [entry["channels"] for entry in info] == [8, 8, 16, 32, 1280]
    assert "height" not in info[0]
    sized = keras_nets.feature_info("mobilenet_v2", input_shape=(97, 130, 3), alpha=0.35)
    assert [(entry["height"], entry["width"]) for entry in sized] == [
        (49, 65),
        (25, 33),
        (13, 17),
        (7, 9),
        (4, 5),
    ]


def tiny_unet():
    """A U-Net head on MobileNetV2's P2..P5: upsample, concatenate the level below, convolve."""
    backbone = small_features_model(out_levels=["P2", "P3", "P4", "P5"])
    x = backbone.output["P5"]
    for level in ("P4", "P3", "P2"):
        x = layers.UpSampling2D()(x)
        x = layers.Concatenate()([x, backbone.output[level]])
        x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.UpSampling2D(4)(x)
    mask = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    return keras.Model(backbone.input, mask)


def test_unfreeze_from_a_level_trains_the_head_and_the_backbone_from_that_level_on():
    model = tiny_unet()
    features.unfreeze_from(model, "P5")
    trainable = {layer.name for layer in model.layers if layer.trainable_weights}
    assert "block_13_expand" in trainable and "block_16_project" in trainable  # stage 5
    assert "block_12_expand" not in trainable and "Conv1" not in trainable  # up to P4: frozen
    assert "mask" in trainable
    assert not any(isinstance(model.get_layer(n), layers.BatchNormalization) for n in trainable)
    head_on_p2 = model.get_layer("block_2_add")._outbound_nodes  # the head's concat stays trainable
    assert all(
        node.operation.trainable
        for node in head_on_p2
        if node.operation.name.startswith("concatenate")
    )

    features.unfreeze_from(model, "P1")
    assert model.get_layer("Conv1").trainable
    with pytest.raises(ValueError, match=r"level='P7': expected one of P1, P2, P3, P4, P5"):
        features.unfreeze_from(model, "P7")


def test_a_unet_on_the_features_trains_for_a_few_steps():
    keras.utils.set_random_seed(0)  # the head's initial weights: a fixed start, the same every run
    model = tiny_unet()
    features.unfreeze_from(model, "P4")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    # Masks the features can see: 8x8-pixel blocks (P3's stride), each on where the image's
    # block is bright. A per-pixel mask would be finer than any feature map the head gets.
    rng = np.random.default_rng(0)
    blocks = rng.uniform(-1, 1, (8, 12, 12, 1))
    masks = np.repeat(np.repeat(blocks > 0, 8, axis=1), 8, axis=2).astype("float32")
    images = (
        np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2) * np.ones(3)
        + rng.normal(0, 0.1, (8, 96, 96, 3))
    ).astype("float32")
    calibrate_batch_norm(model, images)  # features that vary with the image, as pretrained ones do
    before = model.evaluate(images, masks, verbose=0)
    model.fit(images, masks, epochs=5, batch_size=4, verbose=0)
    after = model.evaluate(images, masks, verbose=0)
    assert after < 0.9 * before, (
        f"binary cross-entropy {before:.4f} before training, {after:.4f} after"
    )


@pytest.mark.parametrize("runtime", ["onnxruntime", "tensorflow"])
def test_compiled_features_model_returns_the_dict_of_feature_maps(runtime):
    model = small_features_model(out_levels=["P3", "P5"])
    randomize_weights(model)
    images = random_images((3, 96, 96, 3))
    expected = model.predict(images, verbose=0)
    maps = keras_nets.compile_for_inference(model, runtime).predict(images, batch_size=2)
    assert isinstance(maps, dict) and list(maps) == ["P3", "P5"]
    for level in maps:
        assert_same_outputs(maps[level], expected[level], rtol=5e-4)


def test_exported_onnx_keeps_the_level_names(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    model = small_features_model(out_levels=["P4", "P5"])
    path = keras_nets.export(model, tmp_path / "features.onnx")
    session = onnxruntime.InferenceSession(str(path))
    assert [output.name for output in session.get_outputs()] == ["P4", "P5"]
