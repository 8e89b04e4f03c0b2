"""InceptionResNetV2 loads the published keras.applications weights layout exactly."""

import keras
import numpy as np
import pytest
from published_layout import (
    AUTO_NAME,
    assert_loads_published_layout,
    random_images,
)

from keras_nets import InceptionResNetV2, inception_resnet_v2

BLOCK_NAMES = (
    [f"block35_{i}" for i in range(1, 11)]
    + [f"block17_{i}" for i in range(1, 21)]
    + [f"block8_{i}" for i in range(1, 11)]
)


def reference_model(**kwargs):
    """keras.applications.InceptionResNetV2 with its residual-scaling layers named as ours.

    Keras 3 scales and adds each residual in one unnamed `CustomScaleLayer`; ours does it with a
    `Rescaling` and an `Add` named like the block (the Keras 2 reference's name). Neither holds
    weights; the i-th such layer belongs to the i-th residual block.
    """
    model = keras.applications.InceptionResNetV2(weights=None, **kwargs)
    scale_layers = [layer for layer in model.layers if type(layer).__name__ == "CustomScaleLayer"]
    assert len(scale_layers) == len(BLOCK_NAMES)
    for layer, block_name in zip(scale_layers, BLOCK_NAMES):
        layer.name = block_name
    return model


def weighted_layers(model):
    """What a weights file is loaded by, in order: each weighted layer's type and weight shapes."""
    return [
        (type(layer).__name__, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
        if layer.weights
    ]


def named_layers(model):
    return {layer.name for layer in model.layers if not AUTO_NAME.match(layer.name)}


def test_loads_keras_applications_weights_layout(tmp_path):
    reference = reference_model(classifier_activation=None)
    ours = assert_loads_published_layout(
        reference,
        InceptionResNetV2,
        tmp_path,
        random_images((2, 299, 299, 3)),
        classifier_activation=None,
    )
    assert weighted_layers(ours) == weighted_layers(reference)
    assert ours.count_params() == 55_873_736


@pytest.fixture(scope="module")
def feature_extractor():
    """The smallest notop model, shared by the tests that only read it."""
    return InceptionResNetV2(weights=None, include_top=False, input_shape=(75, 75, 3))


def test_feature_extractor_has_the_notop_layout(feature_extractor):
    """The notop file holds the same weighted layers as the top one, minus the classifier."""
    reference = reference_model(include_top=False, input_shape=(75, 75, 3))
    assert weighted_layers(feature_extractor) == weighted_layers(reference)
    assert named_layers(feature_extractor) >= named_layers(reference)
    assert feature_extractor.count_params() == reference.count_params() == 54_336_736
    assert feature_extractor.output_shape == (None, 1, 1, 1536)


def test_each_residual_is_scaled_then_added_under_the_block_name(feature_extractor):
    scales = [feature_extractor.get_layer(f"{name}_scale").scale for name in BLOCK_NAMES]
    assert scales == [0.17] * 10 + [0.1] * 20 + [0.2] * 9 + [1.0]
    for name in BLOCK_NAMES:
        assert isinstance(feature_extractor.get_layer(name), keras.layers.Add)
    with pytest.raises(ValueError):
        feature_extractor.get_layer("block8_10_ac")  # the last block adds without a ReLU


def test_preprocess_input_scales_to_plus_minus_one_and_leaves_input_unchanged():
    images = np.array([[[[0.0, 127.5, 255.0]]]], dtype="float32")
    np.testing.assert_allclose(inception_resnet_v2.preprocess_input(images), [[[[-1.0, 0.0, 1.0]]]])
    assert images[0, 0, 0, 2] == 255.0
