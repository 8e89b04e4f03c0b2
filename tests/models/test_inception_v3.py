"""InceptionV3 loads the published keras.applications weights layout exactly; aux_logits adds
TF-slim's auxiliary classifier without disturbing that layout."""

import keras
import pytest
from published_layout import (
    assert_loads_published_layout,
    assert_same_outputs,
    random_images,
    randomize_weights,
    write_legacy_h5,
)

from keras_nets import InceptionV3


@pytest.fixture(scope="module")
def reference_with_top():
    """keras.applications' InceptionV3 with its logits, built once for the tests that load it."""
    return keras.applications.InceptionV3(weights=None, classifier_activation=None)


@pytest.mark.parametrize("include_top", [True, False])
def test_loads_keras_applications_weights_layout(tmp_path, reference_with_top, include_top):
    if include_top:
        reference = reference_with_top
    else:
        reference = keras.applications.InceptionV3(weights=None, include_top=False)
    size = 299 if include_top else 139  # the feature extractor takes any size from 75
    assert_loads_published_layout(
        reference,
        InceptionV3,
        tmp_path,
        random_images((2, size, size, 3)),
        include_top=include_top,
        classifier_activation=None,
    )


def test_aux_logits_model_loads_the_published_layout_into_its_main_path(
    tmp_path, reference_with_top
):
    reference = reference_with_top
    randomize_weights(reference, seed=1)
    path = write_legacy_h5(reference, tmp_path / "inception_v3.h5")
    images = random_images((2, 299, 299, 3))

    model = InceptionV3(weights=str(path), aux_logits=True, classifier_activation=None)

    assert model.output_shape == [(None, 1000), (None, 1000)]
    predictions, aux_predictions = model(images, training=False)
    assert_same_outputs(predictions, reference(images, training=False))
    assert aux_predictions.shape == (2, 1000)


def test_aux_classifier_is_tf_slims_head_on_mixed7():
    model = InceptionV3(weights=None, aux_logits=True, classes=10)
    aux = {layer.name: layer for layer in model.layers if layer.name.startswith("aux_")}
    assert aux["aux_pool"].input.name == model.get_layer("mixed7").output.name
    assert aux["aux_pool"].output.shape[1:] == (5, 5, 768)  # 17x17, 5x5 average pool, stride 3
    assert aux["aux_conv1_conv"].kernel.shape == (1, 1, 768, 128)
    assert aux["aux_conv2_conv"].kernel.shape == (5, 5, 128, 768)
    assert aux["aux_conv2"].output.shape[1:] == (1, 1, 768)
    assert aux["aux_predictions"].output.shape == (None, 10)
    # the main network is unchanged (but for its 10-class top): the aux head adds the rest
    assert model.count_params() == 23_851_784 - 2049 * 1000 + 2049 * 10 + sum(
        layer.count_params() for layer in aux.values()
    )


def test_aux_classifier_fits_the_smallest_input():
    model = InceptionV3(weights=None, aux_logits=True, input_shape=(75, 75, 3))
    assert model.output_shape == [(None, 1000), (None, 1000)]


@pytest.mark.parametrize("include_top", [False, 0])
def test_aux_logits_needs_the_top(include_top):
    with pytest.raises(ValueError, match=r"aux_logits=True with include_top=(False|0)"):
        InceptionV3(weights=None, include_top=include_top, aux_logits=True)
