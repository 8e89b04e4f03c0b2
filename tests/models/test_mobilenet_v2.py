"""MobileNetV2 loads the published keras.applications weights layout exactly, at every width."""

import re

import keras
import pytest
from published_layout import assert_loads_published_layout, random_images

from keras_nets import MobileNetV2

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too


@pytest.mark.parametrize(
    "alpha, size, include_top",
    [(1.0, 224, True), (1.0, 224, False), (0.35, 96, True), (0.35, 96, False), (1.4, 224, True)],
)
def test_loads_keras_applications_weights_layout(tmp_path, alpha, size, include_top):
    shape = (size, size, 3)
    reference = keras.applications.MobileNetV2(
        shape, alpha, include_top=include_top, weights=None, classifier_activation=None
    )
    ours = assert_loads_published_layout(
        reference,
        MobileNetV2,
        tmp_path,
        random_images((2, *shape)),
        input_shape=shape,
        alpha=alpha,
        include_top=include_top,
        classifier_activation=None,
    )
    assert ours.name == reference.name


def test_picks_the_default_size_from_the_input_like_keras():
    assert MobileNetV2(weights=None, input_shape=(160, 160, 3)).input_shape == (None, 160, 160, 3)
    assert MobileNetV2(weights=None).input_shape == (None, 224, 224, 3)
    tensor = keras.Input((128, 128, 3))
    assert MobileNetV2(weights=None, input_tensor=tensor).input_shape == (None, 128, 128, 3)


# 1e6 and inf: bounded, for memory (1e6 was a MemoryError, inf an OverflowError traceback).
@pytest.mark.parametrize("alpha", [0, -1.0, "1.0", None, True, float("nan"), 1e6, float("inf")])
def test_rejects_an_alpha_that_is_not_a_number_in_range(alpha):
    message = f"alpha={alpha!r}: expected a number above 0 and at most 4"
    with pytest.raises(ValueError, match=re.escape(message)):
        MobileNetV2(weights=None, alpha=alpha)
