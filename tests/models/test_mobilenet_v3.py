"""MobileNetV3 Small and Large load the published keras.applications weights layout exactly."""

import keras
import numpy as np
import pytest
from published_layout import assert_loads_published_layout

from keras_nets import MobileNetV3Large, MobileNetV3Small, pretrained
from keras_nets.mobilenet_v3 import preprocess_input

REFERENCES = {
    MobileNetV3Small: keras.applications.MobileNetV3Small,
    MobileNetV3Large: keras.applications.MobileNetV3Large,
}


def raw_images(shape, seed=0):
    """0-255 pixels: the models scale their own input."""
    return np.random.default_rng(seed).uniform(0.0, 255.0, shape).astype("float32")


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        (MobileNetV3Small, dict(include_top=True)),
        (MobileNetV3Small, dict(include_top=False)),
        (MobileNetV3Large, dict(include_top=True)),
        (MobileNetV3Large, dict(include_top=False, alpha=0.75)),
        (MobileNetV3Large, dict(include_top=True, minimalistic=True)),
    ],
)
def test_loads_keras_applications_weights_layout(tmp_path, builder, kwargs):
    kwargs = dict(input_shape=(96, 96, 3), classifier_activation=None, **kwargs)  # small, fast
    reference = REFERENCES[builder](weights=None, **kwargs)
    assert_loads_published_layout(
        reference, builder, tmp_path, raw_images((2, 96, 96, 3)), **kwargs
    )


@pytest.mark.parametrize(
    "builder, minimalistic, params",
    [
        (MobileNetV3Small, False, 2_554_968),
        (MobileNetV3Small, True, 2_056_848),
        (MobileNetV3Large, False, 5_507_432),
        (MobileNetV3Large, True, 3_948_688),
    ],
)
def test_parameter_count_is_the_published_one(builder, minimalistic, params):
    assert builder(weights=None, minimalistic=minimalistic).count_params() == params


def test_without_built_in_preprocessing_the_model_takes_scaled_input():
    kwargs = dict(input_shape=(32, 32, 3), include_top=False, pooling="avg")
    with_scaling = MobileNetV3Small(weights=None, **kwargs)
    without = MobileNetV3Small(weights=None, include_preprocessing=False, **kwargs)
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in without.layers)
    without.set_weights(with_scaling.get_weights())
    images = raw_images((1, 32, 32, 3))
    np.testing.assert_allclose(
        without.predict(images / 127.5 - 1, verbose=0),
        with_scaling.predict(images, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=0.5), r"alpha=0.5: published ImageNet weights exist for alpha 0.75 and 1.0"),
        (dict(alpha=0.75, minimalistic=True), r"alpha=0.75: .*alpha 1.0 with minimalistic=True"),
    ],
)
def test_imagenet_weights_reject_unpublished_alpha(keras_home, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MobileNetV3Small(weights="imagenet", **kwargs)


def test_preprocess_input_is_a_pass_through():
    x = np.full((1, 2, 2, 3), 200.0, dtype="float32")
    assert preprocess_input(x) is x


@pytest.mark.parametrize(
    "builder, kwargs, key",
    [
        (MobileNetV3Large, dict(), "mobilenet_v3_large_1.0"),
        (MobileNetV3Small, dict(alpha=0.75), "mobilenet_v3_small_0.75"),
        (
            MobileNetV3Small,
            dict(minimalistic=True, include_top=False),
            "mobilenet_v3_small_minimalistic_1.0",
        ),
    ],
)
def test_imagenet_weights_are_the_manifest_variant_of_the_arguments(
    monkeypatch, builder, kwargs, key
):
    loaded = []
    monkeypatch.setattr(
        pretrained, "load_published_weights", lambda model, k, top: loaded.append((k, top))
    )
    builder(weights="imagenet", **kwargs)
    assert loaded == [(key, kwargs.get("include_top", True))]
