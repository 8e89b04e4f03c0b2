"""preprocess_input and decode_predictions under misuse: integer inputs of every kind, NaN scores,
wrong shapes and types. Each row is one input; the expected numbers are written out from the
ImageNet formulas, not computed by the code under test.
"""

import keras
import numpy as np
import pytest

from keras_nets import imagenet

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], "float32")
TORCH_MEAN = np.array([0.485, 0.456, 0.406], "float32")
TORCH_STD = np.array([0.229, 0.224, 0.225], "float32")

# Pixels whose integer arithmetic wraps round: 0 - mean and 255 - mean leave the uint8 range.
PIXELS = np.array([[[[0, 128, 255], [200, 10, 55]]]], "uint8")  # (1, 1, 2, 3) RGB


def expected(mode):
    x = PIXELS.astype("float32")
    if mode == "tf":
        return x / 127.5 - 1
    if mode == "caffe":
        return x[..., ::-1] - CAFFE_MEAN_BGR
    return (x / 255 - TORCH_MEAN) / TORCH_STD


INTEGER_INPUTS = {
    "numpy uint8": lambda: PIXELS,
    "numpy int64": lambda: PIXELS.astype("int64"),
    "python list of ints": lambda: PIXELS.tolist(),
    "backend uint8 tensor": lambda: keras.ops.convert_to_tensor(PIXELS, dtype="uint8"),
    "backend int32 tensor": lambda: keras.ops.convert_to_tensor(PIXELS, dtype="int32"),
    "backend int64 tensor": lambda: keras.ops.convert_to_tensor(PIXELS, dtype="int64"),
}


@pytest.mark.parametrize("make_input", INTEGER_INPUTS.values(), ids=INTEGER_INPUTS.keys())
@pytest.mark.parametrize("mode", imagenet.PREPROCESSING_MODES)
def test_integer_input_is_cast_to_float_before_the_arithmetic(mode, make_input):
    result = imagenet.preprocess_input(make_input(), mode=mode)
    assert "float" in keras.backend.standardize_dtype(result.dtype)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(result), expected(mode), rtol=1e-5, atol=1e-4
    )


@pytest.mark.parametrize(
    "bad", [[["a", "b", "c"]], {"pixels": 1}, object()], ids=["strings", "dict", "object"]
)
def test_non_numeric_images_name_the_argument(bad):
    with pytest.raises(ValueError, match=r"^x of type \w+: expected images as numbers"):
        imagenet.preprocess_input(bad, mode="tf")


def scores(rows=2):
    return np.full((rows, 1000), 0.001, "float32")


def with_nan(row):
    preds = scores(3)
    preds[row, 7] = np.nan
    return preds


DECODE_ERRORS = {
    "NaN in the first row": (with_nan(0), {}, r"^preds row 0 has NaN scores"),
    "NaN in a later row": (with_nan(2), {}, r"^preds row 2 has NaN scores \(1 of 3 rows do\)"),
    "one prediction without its batch axis": (
        scores(1)[0],
        {},
        r"shape \(1000,\).*pass preds\[None\]",
    ),
    "another number of classes": (np.zeros((2, 10)), {}, r"shape \(2, 10\).*\(samples, 1000\)"),
    "a feature map": (np.zeros((1, 1000, 1)), {}, r"shape \(1, 1000, 1\)"),
    "a scalar": (np.float32(0.5), {}, r"shape \(\)"),
    "strings": (np.full((1, 1000), "x"), {}, r"preds has dtype <U1; expected numbers"),
    "top=0": (scores(), {"top": 0}, r"top=0: expected an integer from 1 to 1000"),
    "top=True": (scores(), {"top": True}, r"top=True: expected an integer"),
    "top=2.5": (scores(), {"top": 2.5}, r"top=2.5: expected an integer"),
    "top=1001": (scores(), {"top": 1001}, r"top=1001: expected an integer from 1 to 1000"),
}


@pytest.mark.parametrize("case", DECODE_ERRORS)
def test_decode_predictions_refuses_with_one_clear_message(case):
    preds, arguments, message = DECODE_ERRORS[case]
    with pytest.raises(ValueError, match=message):
        imagenet.decode_predictions(preds, **arguments)


def test_decode_predictions_takes_numpy_integer_top_and_backend_tensors():
    preds = scores(1)
    preds[0, 386] = 0.9  # African elephant
    tensor = keras.ops.convert_to_tensor(preds)
    [[best, _]] = imagenet.decode_predictions(tensor, top=np.int64(2))
    assert best[:2] == ("n02504458", "African_elephant")
