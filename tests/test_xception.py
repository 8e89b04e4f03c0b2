"""Xception loads the published keras.applications weights layout exactly."""

import keras
import pytest

from keras_nets import Xception
from published_layout import assert_loads_published_layout, random_images


@pytest.mark.parametrize("include_top", [True, False])
def test_loads_keras_applications_weights_layout(tmp_path, include_top):
    reference = keras.applications.Xception(
        weights=None, include_top=include_top, classifier_activation=None
    )
    assert_loads_published_layout(
        reference,
        Xception,
        tmp_path,
        random_images((2, 299, 299, 3)),
        include_top=include_top,
        classifier_activation=None,
    )


def test_parameter_count_is_the_published_one():
    assert Xception(weights=None).count_params() == 22_910_480


def test_feature_extractor_accepts_the_smallest_input():
    model = Xception(weights=None, include_top=False, input_shape=(71, 71, 3), pooling="avg")
    assert model.output_shape == (None, 2048)


def test_rejects_input_below_minimum():
    with pytest.raises(ValueError, match=r"input_shape=\(70, 70, 3\).*at least 71"):
        Xception(weights=None, include_top=False, input_shape=(70, 70, 3))
