"""ResNet-101 and -152 load the published keras.applications weights layouts exactly.

ResNet-101, the smaller, is proved at its published 224x224 with its top and at 64x64 without
(the notop file holds the same layers minus the classifier, and the features model takes any size
from 32). ResNet-152, the larger, at 64x64 with and without its top, from one reference.
"""

import keras
import numpy as np
import pytest
from published_layout import (
    assert_loads_published_layout,
    assert_loads_published_top_and_notop,
    random_images,
)

from keras_nets import ResNet101, ResNet152, resnet

# Builder, keras.applications' builder, parameters with the top (keras.applications' count).
RESNETS = {
    "resnet101": (ResNet101, keras.applications.ResNet101, 44_707_176),
    "resnet152": (ResNet152, keras.applications.ResNet152, 60_419_944),
}


@pytest.mark.parametrize("include_top, size", [(True, 224), (False, 64)], ids=["top", "notop"])
def test_resnet101_loads_keras_applications_weights_layout(tmp_path, include_top, size):
    shape = (size, size, 3)
    reference = keras.applications.ResNet101(
        weights=None, include_top=include_top, input_shape=shape, classifier_activation=None
    )
    ours = assert_loads_published_layout(
        reference,
        ResNet101,
        tmp_path,
        random_images((2, *shape)),
        include_top=include_top,
        input_shape=shape,
        classifier_activation=None,
    )
    assert ours.name == reference.name == "resnet101"
    if include_top:
        assert ours.count_params() == RESNETS["resnet101"][2]


def test_resnet152_loads_keras_applications_weights_layout_top_and_notop(tmp_path):
    ours, reference, published_parameters = RESNETS["resnet152"]
    shape = (64, 64, 3)
    kwargs = dict(input_shape=shape, classifier_activation=None)
    reference = reference(weights=None, **kwargs)
    top, _ = assert_loads_published_top_and_notop(
        reference, ours, tmp_path, random_images((2, *shape)), "conv5_block3_out", **kwargs
    )
    assert top.count_params() == published_parameters


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_feature_pooling_layer_has_the_keras_name(pooling):
    model = ResNet101(weights=None, include_top=False, input_shape=(32, 32, 3), pooling=pooling)
    assert model.layers[-1].name == f"{pooling}_pool"
    assert model.output_shape == (None, 2048)


def test_preprocess_input_is_caffe_style_and_leaves_input_unchanged():
    images = np.full((1, 1, 1, 3), 100.0, dtype="float32")
    x = resnet.preprocess_input(images)
    assert x[0, 0, 0].tolist() == pytest.approx([100 - 103.939, 100 - 116.779, 100 - 123.68])
    assert images[0, 0, 0, 0] == 100.0
