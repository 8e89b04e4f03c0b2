"""Every argument check of builder.image_input, on every registry model.

Bad arguments fail before any layer is built, with a ValueError that names the argument and the
value. The checks that need weights="imagenet" stop before any download is attempted.
"""

import json
import re

import keras
import numpy as np
import pytest

import keras_nets
from keras_nets import MobileNetV2, pretrained

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too

# registry name -> (builder, default input size, smallest input size)
MODELS = {
    name: (config.function, config.default_size, config.min_size)
    for name, config in ((name, keras_nets.get_config(name)) for name in keras_nets.list_models())
}
PUBLISHED = [name for name in MODELS if keras_nets.get_config(name).published_weights]


@pytest.fixture(autouse=True)
def download_attempts(keras_home, monkeypatch):
    """The files a test tried to download. Every download fails, so a call that got past the
    checks raises a download error, not the expected ValueError."""
    attempts = []

    def retrieve(url, item, destination):
        attempts.append(item["file"])
        raise pretrained.DownloadFailed("no network in the tests")

    monkeypatch.setattr(pretrained, "_retrieve", retrieve)
    return attempts


@pytest.fixture(params=list(MODELS))
def model(request):
    return MODELS[request.param]


@pytest.fixture(params=PUBLISHED)
def published_model(request):
    """A model with published ImageNet weights, for the checks of weights="imagenet"."""
    return MODELS[request.param]


def raises(pattern):
    return pytest.raises(ValueError, match=pattern)


def test_weights_must_be_none_imagenet_or_an_existing_file(model):
    builder, _, _ = model
    for weights in ["imagenet21k", "no/such/weights.h5", 1]:
        with raises(rf"weights={weights!r}: expected None .*'imagenet'.* path of an existing"):
            builder(weights=weights)


def test_imagenet_top_needs_1000_classes(published_model):
    builder, _, _ = published_model
    with raises(r"classes=10: with weights='imagenet' and include_top=True .* must be 1000"):
        builder(weights="imagenet", classes=10)


def test_classes_must_be_a_positive_integer(model):
    builder, _, _ = model
    for classes in [0, -3, 2.5, "10", True]:
        with raises(rf"classes={classes!r}: expected a positive integer"):
            builder(weights=None, classes=classes)


def test_pooling_must_be_none_avg_or_max(model):
    builder, _, _ = model
    for pooling in ["mean", "AVG", 1]:
        with raises(rf"pooling={pooling!r}: expected one of None, 'avg' or 'max'"):
            builder(weights=None, include_top=False, pooling=pooling)


def test_imagenet_top_takes_only_softmax_or_logits(published_model):
    builder, _, _ = published_model
    with raises(r"classifier_activation='relu': with weights='imagenet' and include_top=True"):
        builder(weights="imagenet", classifier_activation="relu")


def test_input_below_the_minimum_size(model):
    builder, _, min_size = model
    shape = (min_size - 1, min_size + 10, 3)
    with raises(rf"input_shape=\({shape[0]}, {shape[1]}, 3\): .* at least {min_size} pixels"):
        builder(weights=None, include_top=False, input_shape=shape)


def test_imagenet_top_takes_only_the_default_shape(published_model):
    builder, size, _ = published_model
    with raises(
        rf"input_shape=\(200, 200, 3\): with weights='imagenet' and include_top=True, "
        rf".* takes input_shape=\({size}, {size}, 3\)"
    ):
        builder(weights="imagenet", input_shape=(200, 200, 3))


def test_imagenet_weights_need_3_channels(published_model):
    builder, size, _ = published_model
    with raises(rf"input_shape=\({size}, {size}, 1\): ImageNet weights expect 3 input channels"):
        builder(weights="imagenet", include_top=False, input_shape=(size, size, 1))


def test_top_needs_a_fixed_input_size(model):
    builder, _, _ = model
    with raises(r"input_shape=\(None, None, 3\): include_top=True needs a fixed height and width"):
        builder(weights=None, input_shape=(None, None, 3))


def test_input_shape_must_be_height_width_channels(model):
    builder, _, _ = model
    for shape in [(224, 224), (224, 224, 3, 1), (224, "wide", 3), 224, "224"]:
        with raises(rf"input_shape={re.escape(repr(shape))}: expected a tuple \(height, width, "):
            builder(weights=None, include_top=False, input_shape=shape)


def test_input_shape_must_agree_with_input_tensor(model):
    builder, _, _ = model
    tensor = keras.Input(shape=(96, 96, 3))
    with raises(
        r"input_shape=\(128, 128, 3\) disagrees with the shape of input_tensor, \(96, 96, 3\)"
    ):
        builder(weights=None, include_top=False, input_tensor=tensor, input_shape=(128, 128, 3))


def test_channels_first_is_refused(model):
    builder, _, _ = model
    keras.config.set_image_data_format("channels_first")
    try:
        with raises(r"image_data_format\(\) is 'channels_first'"):
            builder(weights=None)
    finally:
        keras.config.set_image_data_format("channels_last")


# MobileNetV2: the published weights depend on alpha and the input size ----------------------


def test_mobilenet_v2_alpha_without_published_weights():
    for alpha in [0.25, 0.6, 2.0]:
        with raises(
            rf"alpha={alpha!r}: published ImageNet weights exist for alpha 0.35, 0.5, 0.75, 1.0, "
            r"1.3 and 1.4"
        ):
            MobileNetV2(weights="imagenet", alpha=alpha)


@pytest.mark.parametrize("include_top", [True, False])
def test_mobilenet_v2_size_without_published_weights(include_top):
    for alpha in [1.3, 1.4]:
        with raises(
            rf"alpha={alpha} with input_shape=\(96, 96, 3\): .* 224x224 inputs only; alpha "
            r"0.35, 0.5, 0.75 and 1.0 also have 96, 128, 160 and 192"
        ):
            MobileNetV2(
                weights="imagenet", alpha=alpha, include_top=include_top, input_shape=(96, 96, 3)
            )


def test_mobilenet_v2_variant_missing_from_the_manifest_lists_the_published_ones(
    tmp_path, monkeypatch
):
    def entry(name):
        return {"file": name, "urls": [], "md5": None}

    published = ["mobilenet_v2_0.35_96", "mobilenet_v2_1.0_224", "vgg16"]
    manifest = {k: {"top": entry(f"{k}.h5"), "notop": entry(f"{k}_notop.h5")} for k in published}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"models": manifest}))
    monkeypatch.setenv("KERAS_NETS_MANIFEST", str(path))

    with raises(
        r"weights='imagenet': no published ImageNet weights for 'mobilenet_v2_0.5_128'; "
        r"published mobilenet_v2 variants are: mobilenet_v2_0.35_96, mobilenet_v2_1.0_224$"
    ):
        MobileNetV2(weights="imagenet", alpha=0.5, input_shape=(128, 128, 3))


def test_mobilenet_v2_other_sizes_use_the_224_weights_like_keras(download_attempts):
    """A feature extractor at an unpublished size passes the checks and gets the 224x224 weights."""
    with pytest.raises(RuntimeError, match="could not download"):
        MobileNetV2(weights="imagenet", include_top=False, input_shape=(100, 100, 3))
    assert set(download_attempts) == {
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    }


# input_shape entries and integer arguments (issue 10): one row per case, every registry model --

BAD_INPUT_SHAPES = [
    ((64, 64, 0), r"input_shape=\(64, 64, 0\): expected at least 1 channel"),
    ((224.5, 224, 3), r"input_shape=\(224.5, 224, 3\): expected a tuple .* of whole numbers"),
    ((224, 224, 2.5), r"input_shape=\(224, 224, 2.5\): expected a tuple .* of whole numbers"),
    ((224, True, 3), r"input_shape=\(224, True, 3\): expected a tuple .* of whole numbers"),
]


@pytest.mark.parametrize("name", keras_nets.list_models())
@pytest.mark.parametrize("shape, message", BAD_INPUT_SHAPES)
def test_input_shape_entries_must_be_whole_sizes_and_channels(name, shape, message):
    with raises(message):
        keras_nets.create_model(name, weights=None, include_top=False, input_shape=shape)


# numpy integer scalars are accepted wherever Python ints are
NUMPY_INTEGER_ROWS = [
    (
        "mobilenet_v2",
        dict(
            classes=np.int64(5), alpha=0.35, input_shape=(np.int64(96), np.int32(96), np.int64(3))
        ),
        (None, 5),
    ),
    (
        "mobilenet",
        dict(
            classes=np.int32(4), input_shape=(96, 96, 3), alpha=0.25, depth_multiplier=np.int64(1)
        ),
        (None, 4),
    ),
    (
        "mobilenet_v3_small",
        dict(classes=np.int64(3), alpha=np.float64(0.75), input_shape=(64, 64, 3)),
        (None, 3),
    ),
    (
        "shufflenet_v2",
        dict(classes=np.int16(2), scale=np.float64(0.5), input_shape=(64, 64, 3)),
        (None, 2),
    ),
]


@pytest.mark.parametrize("name, arguments, output_shape", NUMPY_INTEGER_ROWS)
def test_numpy_integer_scalars_work_like_python_ints(name, arguments, output_shape):
    model = keras_nets.create_model(name, weights=None, **arguments)
    assert model.output_shape == output_shape
