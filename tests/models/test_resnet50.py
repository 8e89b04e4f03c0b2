"""ResNet50 has the Keras 2 layout (keras-applications 1.0.8) of the published v0.2 weights."""

import keras
import pytest
from published_layout import (
    assert_loads_published_layout,
    keras2_applications_module,
    keras2_builder_kwargs,
    random_images,
)

from keras_nets import ResNet50

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too


def keras2_resnet50(include_top):
    """keras-applications 1.0.8's ResNet50, returning logits.

    1.0.8 has no `classifier_activation` and always ends in softmax; making fc1000 linear after
    the build (the layer reads `activation` when called) is the only change needed under Keras 3.
    """
    resnet50 = keras2_applications_module("resnet50")
    model = resnet50.ResNet50(weights=None, include_top=include_top, **keras2_builder_kwargs())
    if include_top:
        model.get_layer("fc1000").activation = keras.activations.linear
    return model


@pytest.mark.filterwarnings("ignore:The output shape of `ResNet50:UserWarning")
@pytest.mark.parametrize("include_top", [True, False])
def test_loads_keras2_applications_weights_layout(tmp_path, include_top):
    size = 224 if include_top else 96  # the feature extractor takes any size from 32
    assert_loads_published_layout(
        keras2_resnet50(include_top),
        ResNet50,
        tmp_path,
        random_images((2, size, size, 3)),
        include_top=include_top,
        classifier_activation=None,
    )


def test_keeps_the_keras2_names_and_padding():
    model = ResNet50(weights=None, include_top=False, input_shape=(224, 224, 3))
    names = [layer.name for layer in model.layers]
    assert names[1:4] == ["conv1_pad", "conv1", "bn_conv1"]
    assert "pool1_pad" in names and "res2a_branch1" in names and "bn5c_branch2c" in names
    assert model.output_shape == (None, 7, 7, 2048)
