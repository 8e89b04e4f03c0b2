"""MobileNet (V1) loads the published keras.applications weights layout exactly."""

import keras
import pytest
from published_layout import (
    assert_loads_published_layout,
    assert_same_outputs,
    random_images,
    randomize_weights,
    write_legacy_h5,
)

from keras_nets import MobileNet
from keras_nets.mobilenet import preprocess_input


@pytest.mark.parametrize(
    "alpha, rows, include_top",
    [(1.0, 224, True), (1.0, 224, False), (0.25, 128, True), (0.25, 128, False)],
)
def test_loads_keras_applications_weights_layout(tmp_path, alpha, rows, include_top):
    kwargs = dict(
        alpha=alpha,
        input_shape=(rows, rows, 3),
        include_top=include_top,
        classifier_activation=None,
    )
    reference = keras.applications.MobileNet(weights=None, **kwargs)
    ours = assert_loads_published_layout(
        reference, MobileNet, tmp_path, random_images((2, rows, rows, 3)), **kwargs
    )
    assert ours.name == reference.name == f"mobilenet_{alpha:0.2f}_{rows}"


@pytest.mark.parametrize(
    "kwargs, params",
    [(dict(), 4_253_864), (dict(alpha=0.5, input_shape=(160, 160, 3)), 1_342_536)],
)
def test_parameter_count_is_the_published_one(kwargs, params):
    assert MobileNet(weights=None, **kwargs).count_params() == params


def test_square_published_size_is_the_default_input_size():
    assert MobileNet(weights=None, input_shape=(192, 192, 3)).input_shape == (None, 192, 192, 3)
    assert MobileNet(weights=None).input_shape == (None, 224, 224, 3)


def test_depth_multiplier_multiplies_the_depthwise_channels():
    model = MobileNet(weights=None, include_top=False, input_shape=(32, 32, 3), depth_multiplier=2)
    assert model.get_layer("conv_dw_1").output.shape[-1] == 64


def test_feature_extractor_pools_to_a_vector():
    model = MobileNet(
        weights=None, include_top=False, alpha=0.5, input_shape=(32, 32, 3), pooling="max"
    )
    assert model.output_shape == (None, 512)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=0.3), r"alpha=0.3: published ImageNet weights exist for alpha 0.25"),
        (dict(depth_multiplier=2), r"depth_multiplier=2: .*depth_multiplier=1"),
        (dict(input_shape=(200, 200, 3)), r"input_shape=\(200, 200, 3\).*\(224, 224, 3\)"),
    ],
)
def test_imagenet_weights_reject_unpublished_arguments(keras_home, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MobileNet(weights="imagenet", **kwargs)


def test_preprocess_input_scales_to_plus_minus_one():
    assert preprocess_input([[[[0.0, 127.5, 255.0]]]]).tolist() == [[[[-1.0, 0.0, 1.0]]]]


def test_imagenet_weights_come_from_the_file_of_the_selected_variant(keras_home):
    """alpha 0.25 at 128x128 loads mobilenet_2_5_128_tf_no_top.h5 from the Keras cache, offline."""
    kwargs = dict(alpha=0.25, input_shape=(128, 128, 3), include_top=False)
    reference = keras.applications.MobileNet(weights=None, **kwargs)
    randomize_weights(reference)
    (keras_home / "models").mkdir()
    write_legacy_h5(reference, keras_home / "models" / "mobilenet_2_5_128_tf_no_top.h5")
    ours = MobileNet(weights="imagenet", **kwargs)
    images = random_images((1, 128, 128, 3))
    assert_same_outputs(ours.predict(images, verbose=0), reference.predict(images, verbose=0))
