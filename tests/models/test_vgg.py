"""VGG16 and VGG19 load the published keras.applications weights layout exactly."""

import keras
import numpy as np
import pytest
from published_layout import assert_loads_published_layout, random_images

from keras_nets import VGG16, VGG19, vgg16, vgg19

VGGS = {
    "vgg16": (VGG16, keras.applications.VGG16, 138_357_544),
    "vgg19": (VGG19, keras.applications.VGG19, 143_667_240),
}


# The fully connected top is one function for both depths, so VGG16 proves its layout (VGG19's
# convolutions are proved by the notop test below): each load is a 550 MB file, ~40 s in CI.
@pytest.mark.parametrize("model", ["vgg16"])
def test_loads_keras_applications_weights_layout_with_fully_connected_top(tmp_path, model):
    ours, reference, published_parameters = VGGS[model]
    built = assert_loads_published_layout(
        reference(weights=None, include_top=True, classifier_activation=None),
        ours,
        tmp_path,
        random_images((2, 224, 224, 3)),
        include_top=True,
        classifier_activation=None,
    )
    assert built.count_params() == published_parameters


def test_vgg19_with_its_top_has_the_published_parameter_count():
    assert VGG19(weights=None).count_params() == VGGS["vgg19"][2]


@pytest.mark.parametrize("model", VGGS)
def test_loads_keras_applications_notop_layout(tmp_path, model):
    ours, reference, _ = VGGS[model]
    assert_loads_published_layout(
        reference(weights=None, include_top=False, input_shape=(64, 64, 3)),
        ours,
        tmp_path,
        random_images((2, 64, 64, 3)),
        include_top=False,
        input_shape=(64, 64, 3),
    )


@pytest.mark.parametrize(
    "pooling, shape", [(None, (None, 2, 2, 512)), ("avg", (None, 512)), ("max", (None, 512))]
)
def test_feature_extractor_pools_the_last_block(pooling, shape):
    model = VGG16(weights=None, include_top=False, input_shape=(64, 64, 3), pooling=pooling)
    assert model.output_shape == shape


@pytest.mark.parametrize("module", [vgg16, vgg19])
def test_preprocess_input_is_caffe_style_and_leaves_input_unchanged(module):
    images = np.full((1, 2, 2, 3), 100.0, dtype="float32")
    images[..., 0] = 200.0  # red
    x = module.preprocess_input(images)
    np.testing.assert_allclose(x[0, 0, 0], [100 - 103.939, 100 - 116.779, 200 - 123.68], rtol=1e-6)
    assert images[0, 0, 0, 0] == 200.0


def test_imagenet_top_takes_only_224_by_224(keras_home):
    expected = r"input_shape=\(64, 64, 3\).*takes input_shape=\(224, 224, 3\)"
    with pytest.raises(ValueError, match=expected):
        VGG16(weights="imagenet", input_shape=(64, 64, 3))
