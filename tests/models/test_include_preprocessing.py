"""`create_model(name, include_preprocessing=True)`: the model takes raw 0-255 RGB, scales it in
the graph, and gives what `preprocess_input` + the plain model give; so does its export, fed
uint8 images."""

import keras
import numpy as np
import pytest
from informative_weights import (
    CALIBRATION_IMAGES,
    assert_informative,
    calibrate_batch_norm,
    informative_weights,
    random_images,
)
from model_sample import family_sample

import keras_nets
from keras_nets import create_model, export


@pytest.mark.parametrize("name", family_sample())  # tests/model_sample.py
def test_the_model_on_raw_pixels_equals_preprocess_input_then_the_plain_model(name):
    config = keras_nets.get_config(name)
    size = max(config.min_size, 48)
    raw = create_model(
        name,
        weights=None,
        include_top=False,
        pooling="avg",
        input_shape=(size, size, 3),
        include_preprocessing=True,
    )
    if config.preprocessing == "none":  # MobileNetV3 scales its input itself, always
        plain = raw
    else:  # the plain network: the same layers, from after the preprocessing layer on
        assert [layer.name for layer in raw.layers[:2]] == ["image", "preprocess"]
        plain = keras.Model(raw.layers[1].output, raw.outputs)
    calibrate_batch_norm(plain, config.preprocess_input(random_images(CALIBRATION_IMAGES, size)))

    # Other images than the calibration ones: on those, a channel of near-constant statistics
    # turns a rounding difference of the input (x / 127.5 against x * (1 / 127.5)) into 1e-3.
    images = random_images(4, size, seed=1)
    expected = plain.predict(config.preprocess_input(images), verbose=0)
    assert_informative(expected, f"{name} features")
    outputs = raw.predict(images, verbose=0)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_a_model_with_preprocessing_saves_and_loads_as_keras_alone(tmp_path):
    raw = create_model(
        "alexnet",
        weights=None,
        include_top=False,
        input_shape=(67, 67, 3),
        include_preprocessing=True,
    )
    raw.save(tmp_path / "model.keras")
    images = random_images(2, 67)
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), raw.predict(images, verbose=0))


def test_a_weights_file_loads_behind_a_preprocessing_layer_with_weights(tmp_path):
    """AlexNet's caffe preprocessing is a frozen Dense layer: the file's weights must still go
    to the network's own layers, in order."""
    kwargs = dict(include_top=False, input_shape=(67, 67, 3))
    plain = create_model("alexnet", weights=None, **kwargs)
    plain.save_weights(tmp_path / "alexnet.weights.h5")
    raw = create_model(
        "alexnet",
        weights=str(tmp_path / "alexnet.weights.h5"),
        include_preprocessing=True,
        **kwargs,
    )
    images = random_images(2, 67)
    expected = plain.predict(keras_nets.get_config("alexnet").preprocess_input(images), verbose=0)
    assert_informative(expected, "AlexNet features")
    outputs = raw.predict(images, verbose=0)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize(
    "name, size, options",
    [
        ("mobilenet_v2", 48, {"alpha": 0.35}),  # "tf": x / 127.5 - 1
        ("resnet50", 32, {}),  # "caffe": BGR, ImageNet means subtracted
        ("shufflenet_v2", 32, {"scale": 0.5}),  # "torch": / 255, ImageNet mean and deviation
        ("mobilenet_v3_small", 32, {"alpha": 0.75}),  # its own Rescaling, as keras.applications'
    ],
)
def test_a_users_input_tensor_gets_the_preprocessing_too(name, size, options, tmp_path):
    """create_model(input_tensor=t, include_preprocessing=True) on raw pixels equals
    preprocess_input, then the plain model with the same weights."""
    config = keras_nets.get_config(name)
    kwargs = dict(include_top=False, pooling="avg", **options)
    # The model as built by default: it takes what preprocess_input gives (MobileNetV3 scales
    # its own input, and its preprocess_input returns the pixels unchanged).
    plain = create_model(name, weights=None, input_shape=(size, size, 3), **kwargs)
    calibrate_batch_norm(plain, config.preprocess_input(random_images(CALIBRATION_IMAGES, size)))
    plain.save_weights(tmp_path / "plain.weights.h5")

    photo = keras.Input((size, size, 3), name="photo")
    raw = create_model(
        name,
        weights=str(tmp_path / "plain.weights.h5"),
        input_tensor=photo,
        include_preprocessing=True,
        **kwargs,
    )
    assert raw.inputs[0] is photo
    images = random_images(4, size, seed=1)
    expected = plain.predict(config.preprocess_input(images), verbose=0)
    assert_informative(expected, f"{name} features")
    outputs = raw.predict(images, verbose=0)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


@pytest.fixture(scope="module")
def small_models(tmp_path_factory):
    """MobileNetV2 (alpha 0.35, 96x96, 1000 classes) from one informative weights file: plain,
    and with preprocessing (the weights load into the network after its preprocessing layer)."""
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2.weights.h5"
    kwargs = dict(
        weights=informative_weights(path, "mobilenet_v2", 96, alpha=0.35),
        alpha=0.35,
        input_shape=(96, 96, 3),
    )
    return create_model("mobilenet_v2", **kwargs), create_model(
        "mobilenet_v2", include_preprocessing=True, **kwargs
    )


@pytest.mark.parametrize("format", ["onnx", "tflite"])
def test_an_export_with_preprocessing_takes_uint8_images(small_models, tmp_path, format):
    from test_export import run_onnx, run_tflite

    plain, raw = small_models
    images = random_images(4, 96, seed=1).round().astype("uint8")
    expected = plain.predict(
        keras_nets.get_config("mobilenet_v2").preprocess_input(images), verbose=0
    )
    assert_informative(expected, "MobileNetV2 predictions")
    np.testing.assert_allclose(raw.predict(images, verbose=0), expected, atol=1e-4)

    path = export(raw, tmp_path / f"model.{format}", include_preprocessing=True)
    outputs = {"onnx": run_onnx, "tflite": run_tflite}[format](str(path), images)
    np.testing.assert_allclose(outputs, expected, atol=1e-4)


def test_exporting_a_model_without_preprocessing_for_uint8_is_refused(small_models, tmp_path):
    plain, _ = small_models
    with pytest.raises(
        ValueError,
        match="include_preprocessing=True: model .* does not preprocess its input itself",
    ):
        export(plain, tmp_path / "model.onnx", include_preprocessing=True)
    assert list(tmp_path.iterdir()) == []
