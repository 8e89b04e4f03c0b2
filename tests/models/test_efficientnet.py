"""EfficientNet-B0 ... B7 load the published keras.applications weights layout exactly, and with
`weights="imagenet"` normalise their input as keras.applications does."""

import keras
import numpy as np
import pytest
from informative_weights import (
    CALIBRATION_IMAGES,
    assert_informative,
    calibrate_batch_norm,
    random_images,
)
from published_layout import (
    assert_loads_published_layout,
    assert_loads_published_top_and_notop,
    assert_same_outputs,
    randomize_weights,
    write_legacy_h5,
)

import keras_nets
from keras_nets import EfficientNetB0, EfficientNetB7, pretrained
from keras_nets.efficientnet import preprocess_input

BUILDERS = [getattr(keras_nets, f"EfficientNetB{k}") for k in range(8)]
# keras.applications' parameter counts (with the top), written out: building its eight
# references too would double this file's time for numbers that do not change.
PUBLISHED_PARAMETERS = [
    5_330_571,
    7_856_239,
    9_177_569,
    12_320_535,
    19_466_823,
    30_562_527,
    43_265_143,
    66_658_687,
]


def raw_images(shape, seed=0):
    """0-255 pixels: the models scale their own input."""
    return np.random.default_rng(seed).uniform(0.0, 255.0, shape).astype("float32")


@pytest.mark.parametrize(
    "builder, reference, kwargs",
    [
        (EfficientNetB0, keras.applications.EfficientNetB0, dict(include_top=True)),
        (
            EfficientNetB0,
            keras.applications.EfficientNetB0,
            dict(include_top=False, pooling="avg", input_shape=(65, 65, 3)),  # odd: paddings
        ),
    ],
    ids=["b0-top", "b0-notop"],
)
def test_loads_keras_applications_weights_layout(tmp_path, builder, reference, kwargs):
    kwargs = dict(classifier_activation=None, **kwargs)  # logits: before the softmax
    reference = reference(weights=None, **kwargs)
    size = reference.input_shape[1]
    assert_loads_published_layout(
        reference, builder, tmp_path, raw_images((2, size, size, 3)), **kwargs
    )


def test_b7_loads_keras_applications_weights_layout_top_and_notop(tmp_path):
    """B7 is B0 with 55 blocks instead of 16, at a small size: the layout is the same at any."""
    kwargs = dict(input_shape=(64, 64, 3), classifier_activation=None)
    reference = keras.applications.EfficientNetB7(weights=None, **kwargs)
    top, _ = assert_loads_published_top_and_notop(
        reference, EfficientNetB7, tmp_path, raw_images((2, 64, 64, 3)), "top_activation", **kwargs
    )
    assert top.count_params() == PUBLISHED_PARAMETERS[7]


def test_the_layout_proof_holds_on_outputs_that_depend_on_the_input(tmp_path):
    """The same proof with BatchNorm statistics measured on images (random ones leave the
    features all but constant), at 224x224, where each stride-2 padding is uneven."""
    kwargs = dict(include_top=False, pooling="avg", input_shape=(224, 224, 3))
    reference = keras.applications.EfficientNetB0(weights=None, **kwargs)
    randomize_weights(reference)
    calibrate_batch_norm(reference, random_images(CALIBRATION_IMAGES, 224))
    path = write_legacy_h5(reference, tmp_path / "efficientnetb0_notop.h5")
    ours = EfficientNetB0(weights=str(path), **kwargs)
    images = random_images(4, 224, seed=1)
    expected = reference(images, training=False)
    assert_informative(expected, "EfficientNet-B0 features")
    assert_same_outputs(ours(images, training=False), expected)


@pytest.mark.parametrize("builder, parameters", zip(BUILDERS, PUBLISHED_PARAMETERS))
def test_parameter_count_is_keras_applications(builder, parameters):
    # the count does not depend on the input size: a small one builds faster
    assert builder(weights=None, input_shape=(32, 32, 3)).count_params() == parameters


def test_with_imagenet_weights_the_input_is_normalised_as_keras_applications_does(
    tmp_path, monkeypatch
):
    """keras.applications corrects the published files' Normalization variance (the standard
    deviation) with one more Rescaling, only with weights="imagenet": both load the same file,
    served to each in place of the download."""
    kwargs = dict(include_top=False, pooling="avg", input_shape=(64, 64, 3))
    twin = keras.applications.EfficientNetB0(weights=None, **kwargs)
    randomize_weights(twin)
    normalization = next(l for l in twin.layers if isinstance(l, keras.layers.Normalization))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    normalization.set_weights([mean, std, np.array(0)])  # the std as variance, as published
    path = str(write_legacy_h5(twin, tmp_path / "efficientnetb0_notop.h5"))
    from keras.src.applications import efficientnet as keras_efficientnet

    monkeypatch.setattr(keras_efficientnet.file_utils, "get_file", lambda *args, **kw: path)
    reference = keras.applications.EfficientNetB0(weights="imagenet", **kwargs)
    loaded = []

    def load(model, key, include_top):
        loaded.append((key, include_top))
        pretrained.load_weights_file(model, path)

    monkeypatch.setattr(pretrained, "load_published_weights", load)
    ours = EfficientNetB0(weights="imagenet", **kwargs)
    assert loaded == [("efficientnet_b0", False)]
    rescalings = [l for l in ours.layers if isinstance(l, keras.layers.Rescaling)]
    assert len(rescalings) == 2  # to [0, 1], then the correction
    images = raw_images((2, 64, 64, 3))
    expected = reference(images, training=False)
    assert_same_outputs(ours(images, training=False), expected)
    # and what that computes is (x / 255 - mean) / std, the ImageNet normalisation
    pixels = keras.Model(ours.input, ours.get_layer("stem_conv_pad").input)(images)
    np.testing.assert_allclose(pixels, (images / 255 - mean) / std, rtol=1e-5, atol=1e-5)


def test_without_imagenet_weights_there_is_no_correction():
    model = EfficientNetB0(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert [type(l).__name__ for l in model.layers[1:4]] == [
        "Rescaling",
        "Normalization",
        "ZeroPadding2D",
    ]


def test_preprocess_input_is_a_pass_through():
    x = np.full((1, 2, 2, 3), 200.0, dtype="float32")
    assert preprocess_input(x) is x
