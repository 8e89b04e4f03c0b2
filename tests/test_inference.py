"""compile_for_inference: every model runs on each backend with the Keras model's outputs.

Weights are random, BatchNormalization moving statistics included, so folding the normalisations
into the convolutions changes every folded kernel; the outputs must still match to a relative 1e-4.
"""

import importlib.util

import keras
import numpy as np
import pytest
from keras import layers

from keras_nets import compile_for_inference, get_config, inference, list_models
from published_layout import assert_same_outputs, random_images, randomize_weights


def small_model(name):
    """Registry model `name`, random weights, features at a small input size (fast to test)."""
    config = get_config(name)
    if importlib.util.find_spec(f"keras_nets.{config.family}") is None:
        pytest.skip(f"keras_nets/{config.family}.py does not exist yet (written by another task)")
    size = max(config.min_size, 64)
    model = config.build(weights=None, include_top=False, input_shape=(size, size, 3))
    randomize_weights(model)
    return model


def batch_norms(model):
    return [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]


@pytest.mark.parametrize("name", list_models())
def test_every_registry_model_matches_keras_on_the_default_backend(name):
    model = small_model(name)
    images = random_images((3, *model.input_shape[1:]))

    fast = compile_for_inference(model)

    assert fast.backend == inference.available_backends()[0]
    assert inference._foldable_pairs(fast.model) == {}, "a foldable BatchNormalization is left"
    if inference._foldable_pairs(model):
        assert len(batch_norms(fast.model)) < len(batch_norms(model))
    expected = model(images, training=False)  # what model.predict computes, without its tracing
    assert_same_outputs(fast.predict(images, batch_size=2), expected, 1e-4)


@pytest.mark.parametrize("backend", inference.BACKENDS)
def test_each_backend_matches_keras_for_any_batch_size(backend):
    if backend not in inference.available_backends():
        pytest.skip(f"{backend} is not installed")
    model = small_model("mobilenet_v2")
    fast = compile_for_inference(model, backend=backend)
    assert fast.backend == backend
    for count in (1, 5):
        images = random_images((count, *model.input_shape[1:]), seed=count)
        expected = model.predict(images, verbose=0)
        assert_same_outputs(fast.predict(images, batch_size=4), expected, 1e-4)
        assert_same_outputs(fast(images), expected, 1e-4)


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


def test_folds_each_convolution_kind_exactly():
    model = conv_bn_model()
    randomize_weights(model)
    images = random_images((2, 12, 12, 3))

    folded = inference.fold_batch_norms(model)

    assert batch_norms(folded) == []
    assert all(folded.get_layer(name).use_bias for name in ("conv", "depthwise", "separable", "grouped"))
    assert_same_outputs(folded.predict(images, verbose=0), model.predict(images, verbose=0), 1e-5)


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

    assert {bn.name for bn in batch_norms(folded)} == {"after_shared", "after_activation", "after_input"}
    for ours, theirs in zip(folded.predict(images, verbose=0), model.predict(images, verbose=0)):
        assert_same_outputs(ours, theirs, 1e-5)


def test_folds_inside_nested_models_and_leaves_the_original_alone():
    inner = conv_bn_model()
    inputs = keras.Input((12, 12, 3))
    model = keras.Model(inputs, layers.GlobalAveragePooling2D()(inner(inputs)))
    randomize_weights(inner)
    before = [w.copy() for w in model.get_weights()]
    images = random_images((2, 12, 12, 3))

    fast = compile_for_inference(model, backend="tensorflow")

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

    outputs = compile_for_inference(model, backend="tensorflow").predict(images, batch_size=2)

    assert isinstance(outputs, list) and len(outputs) == 2
    for ours, theirs in zip(outputs, model.predict(images, verbose=0)):
        assert_same_outputs(ours, theirs, 1e-5)


def test_rejects_an_unknown_backend_listing_the_valid_ones():
    model = conv_bn_model()
    with pytest.raises(ValueError, match=r"backend='tpu'.*'auto'.*'onnxruntime', 'openvino', 'tensorflow'"):
        compile_for_inference(model, backend="tpu")


def test_rejects_a_missing_backend_naming_the_extra(monkeypatch):
    monkeypatch.setattr(inference, "available_backends", lambda: ["tensorflow"])
    with pytest.raises(ImportError, match=r"keras-nets\[openvino\]"):
        compile_for_inference(conv_bn_model(), backend="openvino")


def test_rejects_what_is_not_a_keras_model():
    with pytest.raises(ValueError, match="model=.*expected a keras.Model"):
        compile_for_inference("xception")


def test_rejects_images_of_the_wrong_shape_and_a_bad_batch_size():
    fast = compile_for_inference(conv_bn_model(), backend="tensorflow")
    with pytest.raises(ValueError, match=r"x has shape \(2, 10, 10, 3\).*\(None, 12, 12, 3\)"):
        fast.predict(np.zeros((2, 10, 10, 3)))
    with pytest.raises(ValueError, match="empty batch"):
        fast.predict(np.zeros((0, 12, 12, 3)))
    with pytest.raises(ValueError, match="batch_size=0"):
        fast.predict(np.zeros((1, 12, 12, 3)), batch_size=0)
