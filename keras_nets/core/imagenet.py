"""ImageNet input preprocessing and prediction decoding, shared by every model module.

The arithmetic is `keras.applications.imagenet_utils`'; what this adds is that the caller's array is
never modified (Keras scales float arrays in place), that integer input of any kind is cast to float
first (Keras subtracts the caffe mean in the input's own dtype, so uint8 tensors wrap round), that
NaN scores are refused rather than ranked first, and that the class index ships with the package,
so decoding works offline. Keras is imported only for tensors: numpy in, numpy out needs neither
Keras nor a backend (the fast path's warm start, `keras_nets.inference.cache`, runs without them).
"""

import functools
import json
import numbers
import pathlib
import sys

import numpy as np

CLASS_INDEX_PATH = pathlib.Path(__file__).parents[1] / "data" / "imagenet_class_index.json"
PREPROCESSING_MODES = ("tf", "caffe", "torch")
# keras.applications.imagenet_utils' constants: RGB order for torch, BGR for caffe.
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def preprocess_input(x, mode, data_format=None):
    """Scales a batch of RGB images the way a model's ImageNet weights expect.

    Args:
      x: images as a numpy array (any dtype, uint8 included) or a tensor, pixel values 0-255.
      mode: "tf" scales to [-1, 1]; "caffe" converts RGB to BGR and subtracts the ImageNet mean;
        "torch" scales to [0, 1] and normalises with the ImageNet mean and standard deviation.
      data_format: "channels_last" (default) or "channels_first".

    Returns:
      A new float32 array (or tensor); `x` itself is left unchanged.
    """
    if mode not in PREPROCESSING_MODES:
        raise ValueError(f"mode={mode!r}: expected one of {PREPROCESSING_MODES}")
    if isinstance(x, (np.ndarray, np.generic)) or not hasattr(x, "dtype"):  # numpy, lists, ...
        try:
            x = np.array(x, dtype="float32")  # a copy: Keras works in place on float arrays
        except (TypeError, ValueError):
            raise ValueError(
                f"x of type {type(x).__name__}: expected images as numbers (pixel values 0-255), "
                "a numpy array or a tensor"
            ) from None
        return scale_array(x, mode, data_format)
    import keras
    from keras.applications import imagenet_utils

    if "float" not in keras.backend.standardize_dtype(x.dtype):  # a backend tensor of integers
        x = keras.ops.cast(x, "float32")
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode=mode)


def scale_array(x, mode, data_format=None):
    """`preprocess_input` of a float32 numpy array, in place: Keras' numpy arithmetic, the same
    operations in the same order (so the same float32 results), without importing Keras."""
    channels_first = data_format == "channels_first"
    if channels_first and x.ndim in (3, 4):
        axis = x.ndim - 3  # channels of (3, h, w) or (n, 3, h, w)
        x = np.moveaxis(x, axis, -1)  # a view: the arithmetic below lands in x itself
    if mode == "tf":
        x /= 127.5
        x -= 1.0
    elif mode == "torch":
        x /= 255.0
        for channel in range(3):
            x[..., channel] -= TORCH_MEAN[channel]
            x[..., channel] /= TORCH_STD[channel]
    else:  # caffe: RGB to BGR, then the BGR mean
        x = x[..., ::-1]
        for channel in range(3):
            x[..., channel] -= CAFFE_MEAN_BGR[channel]
    return np.moveaxis(x, -1, axis) if channels_first and x.ndim in (3, 4) else x


@functools.cache
def class_index():
    """{class id: (WordNet id, label)} for the 1000 ImageNet classes, read from the package."""
    with open(CLASS_INDEX_PATH) as f:
        return {int(i): tuple(entry) for i, entry in json.load(f).items()}


def decode_predictions(preds, top=5):
    """Names the `top` most probable ImageNet classes of each prediction.

    Args:
      preds: array of shape (samples, 1000), a model's ImageNet output.
      top: how many classes to return per sample.

    Returns:
      One list per sample of `(wordnet_id, label, score)` tuples, best first.
    """
    preds = as_numpy(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        hint = " (one prediction: pass preds[None])" if preds.shape == (1000,) else ""
        raise ValueError(
            f"preds has shape {preds.shape}; decode_predictions expects a batch of ImageNet "
            f"predictions of shape (samples, 1000){hint}"
        )
    if preds.dtype.kind not in "biuf":
        raise ValueError(f"preds has dtype {preds.dtype}; expected numbers (class scores)")
    if not isinstance(top, numbers.Integral) or isinstance(top, bool) or not 1 <= top <= 1000:
        raise ValueError(f"top={top!r}: expected an integer from 1 to 1000")
    return top_classes(preds, int(top), class_index())


def as_numpy(values):
    """A numpy array of `values`: a numpy array or list as it is, a backend tensor through Keras
    (imported only when something else has imported it already: a tensor implies Keras)."""
    if isinstance(values, (np.ndarray, np.generic, list, tuple)) or "keras" not in sys.modules:
        return np.asarray(values)
    import keras

    return keras.ops.convert_to_numpy(values) if keras.ops.is_tensor(values) else np.asarray(values)


def top_classes(preds, top, labels):
    """For each row of `preds`, the `top` best classes as `(*labels[i], score)`, best first.

    `labels` maps a class index to a tuple, e.g. (WordNet id, label) for ImageNet. A row with a
    NaN score is a `scores.NaNScoresError` (a ValueError) naming the row: argsort would rank NaN
    first. Tied scores are listed with their (equal) scores, so a tie reads as one.
    """
    from keras_nets.core.scores import refuse_nan

    preds = np.asarray(preds)
    refuse_nan(preds)
    return [
        [(*labels[int(i)], float(pred[i])) for i in np.argsort(pred)[::-1][:top]] for pred in preds
    ]
