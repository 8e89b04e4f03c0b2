"""Export formats that Keras cannot write on the active backend are one clear error, up front.

Runs on every backend (tests/conftest.py, BACKEND_TEST_MODULES); on TensorFlow every format is
written, and tests/inference/test_export.py checks them.
"""

import keras
import pytest

import keras_nets
from keras_nets.inference.exporting import UNSUPPORTED_ON_BACKEND

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too


@pytest.mark.parametrize("backend_and_format", list(UNSUPPORTED_ON_BACKEND), ids="-".join)
def test_a_format_the_backend_cannot_write_is_refused_before_any_file(backend_and_format, tmp_path):
    backend, format = backend_and_format
    if keras.backend.backend() != backend:
        pytest.skip(f"Keras writes {format} on {keras.backend.backend()}")
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, outputs)
    with pytest.raises(
        ValueError, match=rf"format='{format}' on the Keras backend '{backend}': .*format='onnx'"
    ):
        keras_nets.export(model, tmp_path / "model.out", format=format)
    assert list(tmp_path.iterdir()) == [], "nothing written"
