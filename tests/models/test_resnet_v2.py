"""ResNet50V2, ResNet101V2 and ResNet152V2 load the published keras.applications weights layouts.

The smallest (ResNet50V2) and the largest (ResNet152V2) are proved with and without their top,
ResNet50V2's top at its published 224x224, the others at 64x64 (the classifier sits on a global
average pool, so the same weights fit any input size; the features model takes any size from 32).
ResNet101V2 is the same builder between the two: its parameter count is keras.applications' and
its weighted layers are checked, in order.
"""

import keras
import numpy as np
import pytest
from published_layout import (
    assert_loads_published_layout,
    assert_loads_published_top_and_notop,
    random_images,
    weighted_layers,
)

from keras_nets import ResNet50V2, ResNet101V2, ResNet152V2, resnet_v2

# Builder, keras.applications' builder, parameters with the top (keras.applications' count).
RESNET_V2S = {
    "resnet50_v2": (ResNet50V2, keras.applications.ResNet50V2, 25_613_800),
    "resnet101_v2": (ResNet101V2, keras.applications.ResNet101V2, 44_675_560),
    "resnet152_v2": (ResNet152V2, keras.applications.ResNet152V2, 60_380_648),
}


@pytest.mark.parametrize(
    "model, include_top, size",
    [
        ("resnet50_v2", True, 224),
        ("resnet50_v2", False, 64),
    ],
)
def test_loads_keras_applications_weights_layout(tmp_path, model, include_top, size):
    ours, reference, published_parameters = RESNET_V2S[model]
    shape = (size, size, 3)
    reference = reference(
        weights=None, include_top=include_top, input_shape=shape, classifier_activation=None
    )
    built = assert_loads_published_layout(
        reference,
        ours,
        tmp_path,
        random_images((2, *shape)),
        include_top=include_top,
        input_shape=shape,
        classifier_activation=None,
    )
    assert built.name == reference.name
    if include_top:
        assert built.count_params() == published_parameters


def test_resnet152v2_loads_keras_applications_weights_layout_top_and_notop(tmp_path):
    ours, reference, published_parameters = RESNET_V2S["resnet152_v2"]
    shape = (64, 64, 3)
    kwargs = dict(input_shape=shape, classifier_activation=None)
    reference = reference(weights=None, **kwargs)
    top, _ = assert_loads_published_top_and_notop(
        reference, ours, tmp_path, random_images((2, *shape)), "post_relu", **kwargs
    )
    assert top.name == reference.name
    assert top.count_params() == published_parameters


def test_resnet101v2_parameters_and_weighted_layers_are_keras_applications():
    """The same count and the same weighted layers in the same order (the order a legacy .h5
    file is loaded in), each with weights of the same shapes."""
    ours, reference, published_parameters = RESNET_V2S["resnet101_v2"]
    ours, reference = ours(weights=None), reference(weights=None)
    assert ours.count_params() == reference.count_params() == published_parameters
    assert weighted_layers(ours) == weighted_layers(reference)


def test_a_stage_strides_in_its_last_block_with_a_max_pool_shortcut():
    model = ResNet50V2(weights=None, include_top=False, input_shape=(224, 224, 3))
    shapes = {layer.name: layer.output.shape[1:] for layer in model.layers}
    assert shapes["conv2_block2_out"] == (56, 56, 256)
    assert shapes["conv2_block3_out"] == (28, 28, 256)
    assert shapes["conv4_block6_out"] == (7, 7, 1024)
    assert shapes["post_relu"] == (7, 7, 2048)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert [pool.pool_size for pool in pools] == [(3, 3), (1, 1), (1, 1), (1, 1)]


def test_preprocess_input_scales_to_minus_one_one_and_leaves_input_unchanged():
    images = np.full((1, 1, 1, 3), 255.0, dtype="float32")
    x = resnet_v2.preprocess_input(images)
    assert x[0, 0, 0].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert images[0, 0, 0, 0] == 255.0
