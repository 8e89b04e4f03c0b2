"""Xception loads the published keras.applications weights layout exactly."""

import keras
import pytest
from published_layout import assert_loads_published_layout, random_images

from keras_nets import Xception

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too


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
