"""The registry: one config per model, every name builds its model, the package exports them."""

import keras
import pytest

import keras_nets
from keras_nets import create_model, get_config, list_models
from published_layout import assert_same_outputs, random_images, randomize_weights

MODEL_NAMES = [
    "xception", "inception_v3", "resnet50", "mobilenet_v2", "vgg16", "vgg19", "mobilenet",
    "mobilenet_v3_small", "mobilenet_v3_large", "densenet121", "densenet169", "densenet201",
    "inception_resnet_v2", "shufflenet_v2", "alexnet",
]


def test_list_models_names_the_fifteen_models_in_table_order():
    assert list_models() == MODEL_NAMES


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_builder_is_exported_by_the_package(name):
    config = get_config(name)
    assert callable(getattr(config.module, config.builder))
    assert getattr(keras_nets, config.builder) is getattr(config.module, config.builder)
    assert config.builder in keras_nets.__all__


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_create_model_builds_the_model_at_its_default_size(name):
    config = get_config(name)
    model = create_model(name, weights=None)
    assert model.input_shape == (None, config.default_size, config.default_size, 3)
    assert model.output_shape == (None, 1000)


def test_create_model_passes_arguments_to_the_builder():
    model = create_model("mobilenet_v3_small", weights=None, include_top=False, pooling="avg")
    assert model.output_shape == (None, 576)


def test_unknown_name_is_a_value_error_listing_the_names():
    expected = r"model='nope' is not a keras_nets model; expected one of: xception, .*alexnet"
    with pytest.raises(ValueError, match=expected):
        get_config("nope")
    with pytest.raises(ValueError, match="model='nope'"):
        create_model("nope")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_is_plain_keras_and_round_trips_through_a_keras_file(name, tmp_path):
    """No custom layers: a saved model loads anywhere Keras runs, keras_nets not needed."""
    config = get_config(name)
    size = max(config.min_size, 32)
    model = create_model(name, weights=None, include_top=False, input_shape=(size, size, 3), pooling="avg")
    assert all(type(layer).__module__.startswith("keras.") for layer in model.layers)
    randomize_weights(model)
    images = random_images((2, size, size, 3))
    model.save(tmp_path / f"{name}.keras")
    reloaded = keras.saving.load_model(tmp_path / f"{name}.keras")
    assert_same_outputs(reloaded(images, training=False), model(images, training=False), rtol=0)
