"""NASNetMobile and NASNetLarge load the published keras.applications weights layouts.

NASNetMobile (the smallest) is proved with its top at its published 224x224 and without it at
65x65 (odd: every strided padding and shifted shortcut uneven); NASNetLarge (the largest, 88.9M
parameters) with and without its top at 64x64, not its 331x331: the top sits on a
global average pool, so its weights fit any size, and keras.applications builds the top at any
fixed size of at least 32 when the weights are not ImageNet's (`obtain_input_shape` demands
331x331 only with them). Two 88.9M-parameter models at 331 and a 343 MB file would take minutes
here for no weight the 64x64 build lacks. Each proof also compares the weighted layers (names,
shapes, the order a legacy .h5 file loads them in) with the reference's.
"""

import keras
import numpy as np
import pytest
from published_layout import (
    assert_loads_published_layout,
    assert_same_outputs,
    random_images,
    weighted_layers,
    write_legacy_h5,
)

from keras_nets import NASNetLarge, NASNetMobile, nasnet

# keras.applications' parameter counts with the top (its docs table: 5.3M and 88.9M).
PUBLISHED_PARAMETERS = {"nasnet_mobile": 5_326_716, "nasnet_large": 88_949_818}


@pytest.mark.parametrize("include_top, size", [(True, 224), (False, 65)], ids=["top", "notop"])
def test_nasnet_mobile_loads_keras_applications_weights_layout(tmp_path, include_top, size):
    shape = (size, size, 3)
    reference = keras.applications.NASNetMobile(
        weights=None, include_top=include_top, input_shape=shape, classifier_activation=None
    )
    built = assert_loads_published_layout(
        reference,
        NASNetMobile,
        tmp_path,
        random_images((2, *shape)),
        include_top=include_top,
        input_shape=shape,
        classifier_activation=None,
    )
    assert built.name == reference.name
    assert weighted_layers(built) == weighted_layers(reference)  # names, shapes, file order
    if include_top:
        assert built.count_params() == PUBLISHED_PARAMETERS["nasnet_mobile"]


def test_nasnet_large_loads_keras_applications_weights_layouts(tmp_path):
    """Top and notop from one reference (each NASNetLarge build takes seconds): the notop
    file is the top file without the pooling and the classifier, as the published pair is, so it
    is written from the reference cut at its last ReLU, whose output the features must equal."""
    shape = (64, 64, 3)
    images = random_images((2, *shape))
    reference = keras.applications.NASNetLarge(
        weights=None, input_shape=shape, classifier_activation=None
    )
    built = assert_loads_published_layout(
        reference, NASNetLarge, tmp_path, images, input_shape=shape, classifier_activation=None
    )
    assert built.name == reference.name
    assert weighted_layers(built) == weighted_layers(reference)
    assert built.count_params() == PUBLISHED_PARAMETERS["nasnet_large"]

    features = reference.layers[-3]  # the last ReLU, unnamed in Keras, before pool and Dense
    assert isinstance(features, keras.layers.Activation)
    reference_notop = keras.Model(reference.input, features.output)
    path = write_legacy_h5(reference_notop, tmp_path / "notop.h5")
    notop = NASNetLarge(weights=str(path), include_top=False, input_shape=shape)
    assert notop.count_params() == reference_notop.count_params()
    assert_same_outputs(notop(images, training=False), reference_notop(images, training=False))


def test_cells_keep_then_halve_the_grid_and_the_cell_after_a_reduction_takes_its_input():
    model = NASNetMobile(weights=None, include_top=False)  # None: its default 224x224, as Keras
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["stem_bn1"] == (111, 111, 32)
    assert shapes["reduction_concat_stem_1"] == (56, 56, 44)
    assert shapes["normal_concat_3"] == (28, 28, 264)
    assert shapes["reduction_concat_reduce_4"] == (14, 14, 352)
    assert shapes["normal_concat_8"] == (14, 14, 528)
    assert shapes["final_relu"] == (7, 7, 1056)
    # NASNetMobile: the cell after a Reduction takes the Reduction's input (a 28x28 map, adjusted
    # by a shifted pair of pools); NASNetLarge the cell before it (skip_reduction)
    assert model.get_layer("adjust_bn_5").input.shape[1:3] == (14, 14)
    assert model.get_layer("adjust_relu_1_5").input.shape[1:3] == (28, 28)


@pytest.mark.parametrize("input_shape", [(None, None, 3), (None, 64, 3)])
def test_refuses_a_size_it_cannot_know_even_without_the_top(input_shape):
    with pytest.raises(ValueError, match=r"needs a fixed height and width, with or without"):
        NASNetMobile(weights=None, include_top=False, input_shape=input_shape)


def test_preprocess_input_scales_to_minus_one_one_and_leaves_input_unchanged():
    images = np.array([[[[0.0, 127.5, 255.0]]]], dtype="float32")
    x = nasnet.preprocess_input(images)
    assert x[0, 0, 0].tolist() == pytest.approx([-1.0, 0.0, 1.0])
    assert images[0, 0, 0, 2] == 255.0
