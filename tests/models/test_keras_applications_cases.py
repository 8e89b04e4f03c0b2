"""Keras' own applications test cases, on the families keras.applications adds to the series.

keras/src/applications/applications_test.py builds each keras.applications model without weights
and checks what its outputs look like: any number of input channels on an image of any size
(`test_application_notop_variable_input_channels`), an odd input size (`..._custom_input_shape`),
a user's input tensor after a layer of theirs (`..._custom_input_tensor`), pooling
(`test_application_pooling`) and the classifier's activation
(`test_application_classifier_activation`). Here they run as Keras writes them, channels last
(keras-nets refuses channels first, tests/core/test_argument_errors.py); its remaining case,
`test_application_base`, predicts elephant.jpg with the downloaded ImageNet weights, which the
published-layout tests stand in for (tests/models/, tests/weights/).

Each case builds whole networks, so it runs for one member of each family that
keras.applications has and the article series did not (tests/model_sample.py), with the feature
width Keras' test lists for it: the series' networks were proved against keras.applications when
they landed, and every member's last width is the P5 entry of its README row (tests/docs/
test_readme_model_table.py) and its layout is proved in its family's tests (tests/models/).
"""

import keras
import pytest
from model_sample import family_sample

from keras_nets import create_model, get_config, list_models

# Registry name: the channels of the last feature map (Keras' MODEL_LIST, `last_dim`).
LAST_DIM = {
    "xception": 2048,
    "inception_v3": 2048,
    "resnet50": 2048,
    "resnet101": 2048,
    "resnet152": 2048,
    "resnet50_v2": 2048,
    "resnet101_v2": 2048,
    "resnet152_v2": 2048,
    "mobilenet_v2": 1280,
    "vgg16": 512,
    "vgg19": 512,
    "mobilenet": 1024,
    "mobilenet_v3_small": 576,
    "mobilenet_v3_large": 960,
    "densenet121": 1024,
    "densenet169": 1664,
    "densenet201": 1920,
    "inception_resnet_v2": 1536,
    "efficientnet_b0": 1280,
    "efficientnet_b1": 1280,
    "efficientnet_b2": 1408,
    "efficientnet_b3": 1536,
    "efficientnet_b4": 1792,
    "efficientnet_b5": 2048,
    "efficientnet_b6": 2304,
    "efficientnet_b7": 2560,
    "efficientnet_v2_b0": 1280,
    "efficientnet_v2_b1": 1280,
    "efficientnet_v2_b2": 1408,
    "efficientnet_v2_b3": 1536,
    "efficientnet_v2_s": 1280,
    "efficientnet_v2_m": 1280,
    "efficientnet_v2_l": 1280,
    "convnext_tiny": 768,
    "convnext_small": 768,
    "convnext_base": 1024,
    "convnext_large": 1536,
    "convnext_xlarge": 2048,
    "nasnet_mobile": 1056,
    "nasnet_large": 4032,
    # not in keras.applications
    "shufflenet_v2": 1024,
    "alexnet": 256,
}


# The families keras.applications has beyond the article series' networks (issue 27).
KERAS_FAMILIES = ("resnet", "resnet_v2", "efficientnet", "efficientnet_v2", "convnext", "nasnet")
SAMPLE = [
    name
    for name in family_sample()
    if get_config(name).module_name.rsplit(".", 1)[-1] in KERAS_FAMILIES
]


def build(name, **kwargs):
    return create_model(name, weights=None, **kwargs)


def test_every_registry_model_has_keras_last_dim():
    assert set(list_models()) <= set(LAST_DIM)


# Keras' case builds for any height and width, (None, None, channels). NASNet refuses that by
# design (builder.start(static=True)): a cell halves a shortcut from a larger grid only when its
# two inputs' static sizes differ, and None equals None. keras.applications' NASNetMobile built so
# has 382 weighted layers instead of 388 (4,267,604 parameters without the top, not 4,269,716)
# and fails on a 224x224 image (Incompatible shapes: [1,27,27,22] vs. [1,55,55,22]); its case
# passes only on the symbolic output shape. Here the case runs at a fixed size (below), and
# tests/models/test_nasnet.py checks the refusal.
REFUSES_ANY_SIZE = dict.fromkeys(
    list_models("nasnet_*"), "NASNet needs a fixed height and width (builder.start(static=True))"
)


@pytest.mark.parametrize("name", SAMPLE)
@pytest.mark.parametrize("channels", [1, 4])
def test_application_notop_variable_input_channels(name, channels):
    if name in REFUSES_ANY_SIZE:
        pytest.skip(REFUSES_ANY_SIZE[name])
    model = build(name, include_top=False, input_shape=(None, None, channels))
    assert list(model.outputs[0].shape) == [None, None, None, LAST_DIM[name]]


@pytest.mark.parametrize("name", SAMPLE)
def test_application_notop_custom_input_shape(name):
    size = max(123, get_config(name).min_size)  # NASNetLarge, AlexNet: not below their minimum
    model = build(name, include_top=False, input_shape=(size, size, 3))
    assert model.outputs[0].shape[-1] == LAST_DIM[name]


@pytest.mark.parametrize("name", SAMPLE)
def test_application_notop_custom_input_tensor(name):
    inputs = keras.Input(shape=(200, 200, 4), name="custom_input")
    inputs = keras.layers.Conv2D(3, (2, 2), padding="valid", strides=(2, 2))(inputs)
    model = build(name, include_top=False, input_tensor=inputs)
    assert model.outputs[0].shape[-1] == LAST_DIM[name]


@pytest.mark.parametrize("name", SAMPLE)
def test_application_pooling(name):
    model = build(name, include_top=False, pooling="max")
    assert list(model.outputs[0].shape) == [None, LAST_DIM[name]]


@pytest.mark.parametrize("name", SAMPLE)
def test_application_classifier_activation(name):
    model = build(name, include_top=True, classifier_activation="softmax")
    assert model.layers[-1].activation.__name__ == "softmax"


@pytest.mark.parametrize("name", sorted(set(SAMPLE) & set(REFUSES_ANY_SIZE)))
@pytest.mark.parametrize("channels", [1, 4])
def test_application_notop_variable_input_channels_at_a_fixed_size(name, channels):
    """Keras' case for a network that needs a fixed size: any number of channels, at 64x64."""
    model = build(name, include_top=False, input_shape=(64, 64, channels))
    assert list(model.outputs[0].shape) == [None, 2, 2, LAST_DIM[name]]
