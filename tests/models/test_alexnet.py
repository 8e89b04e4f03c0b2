"""AlexNet as the article series writes it: five convolutions, three dense layers."""

import keras
import pytest

from keras_nets import AlexNet


def test_shapes_and_parameters_of_the_imagenet_network():
    model = AlexNet()
    assert model.input_shape == (None, 227, 227, 3)
    assert model.output_shape == (None, 1000)
    assert model.count_params() == 62_378_344
    convs = [
        (layer.filters, layer.kernel_size, layer.strides)
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D)
    ]
    assert convs == [
        (96, (11, 11), (4, 4)),
        (256, (5, 5), (1, 1)),
        (384, (3, 3), (1, 1)),
        (384, (3, 3), (1, 1)),
        (256, (3, 3), (1, 1)),
    ]
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [
        4096,
        4096,
        1000,
    ]
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        0.5,
        0.5,
    ]
    assert tuple(model.get_layer("pool5").output.shape) == (None, 6, 6, 256)


def test_classes_are_configurable():
    model = AlexNet(classes=10, classifier_activation=None)
    assert model.output_shape == (None, 10)
    assert model.count_params() == 62_378_344 - 4_097_000 + 4096 * 10 + 10


def test_imagenet_weights_do_not_exist():
    with pytest.raises(ValueError, match="weights='imagenet': no published ImageNet weights"):
        AlexNet(weights="imagenet")
