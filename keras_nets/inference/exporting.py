"""Export: a model, its BatchNormalizations folded, written as an ONNX, TFLite or SavedModel file.

    keras_nets.export(model, "xception.onnx")                           # ONNX Runtime, OpenVINO
    keras_nets.export(model, "xception.tflite")                         # LiteRT / TensorFlow Lite
    keras_nets.export(model, "xception_serving", format="saved_model")  # TensorFlow Serving

Every file is written through Keras' own `model.export`, under a temporary name next to its
destination, and renamed when complete. A destination that exists is replaced only when it holds
an earlier export of the same format; anything else there is refused, untouched.
"""

import contextlib
import importlib.util
import logging
import os
import stat
import tempfile
import warnings

import keras

from keras_nets.inference.folding import check_graph_model, fold_batch_norms

FORMATS = ("onnx", "tflite", "saved_model")
_SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite", "saved_model": ""}
_KINDS = {"onnx": "an ONNX model", "tflite": "a TFLite model", "saved_model": "a SavedModel"}


def export(model, path, format=None):
    """Writes `model` (BatchNormalizations folded, see `fold_batch_norms`) for an inference runtime.

    Args:
      model: a Functional or Sequential Keras model with one input.
      path: where to write: a file for "onnx" and "tflite", a directory for "saved_model". It is
        written under a temporary name next to `path` and renamed when complete, so a failed
        export leaves nothing behind. An existing `path` is replaced only when it holds an earlier
        export of the same format (a SavedModel directory with its saved_model.pb, an ONNX or a
        TFLite file); for anything else, the current directory included, a ValueError names it
        and nothing is touched.
      format: "onnx" (needs `keras-nets[onnx]`; run it with ONNX Runtime), "tflite" (LiteRT /
        TensorFlow Lite) or "saved_model" (a TensorFlow SavedModel with a `serve` function);
        None picks it from the suffix of `path` (.onnx, .tflite, anything else: saved_model).
        The batch size stays free in every format.

    Returns:
      `path`.
    """
    if format is None:
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        format = {".onnx": "onnx", ".tflite": "tflite"}.get(suffix, "saved_model")
    if format not in FORMATS:
        raise ValueError(f"format={format!r}: expected one of {', '.join(map(repr, FORMATS))}")
    check_graph_model(model)
    if format == "onnx" and not onnx_converter_installed():
        raise ImportError("format='onnx' needs tf2onnx and onnx: `pip install keras-nets[onnx]`")
    target = _replaceable_target(path, format)

    folded = fold_batch_norms(model)
    writer = {"onnx": write_onnx, "tflite": write_tflite, "saved_model": write_saved_model}[format]
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target), prefix=".keras-nets-export-") as tmp:
        staged = os.path.join(tmp, "model" + _SUFFIXES[format])
        writer(folded, staged)
        _replace(staged, target, tmp)
    return path


def write_onnx(model, path):
    """Writes `model` as it is (nothing folded) to the ONNX file `path` with Keras' `model.export`.

    The batch size stays free and the input is named "images"; the converters' INFO logs are
    silenced. Needs tf2onnx and onnx (`onnx_converter_installed()`).
    """
    with quiet_converters():
        model.export(path, format="onnx", verbose=False, input_signature=input_signature(model))


def write_tflite(model, path):
    """Writes `model` as it is to the LiteRT (TensorFlow Lite) file `path`; batch size free."""
    with quiet_converters():
        model.export(path, format="litert", verbose=False, input_signature=input_signature(model))


def write_saved_model(model, path):
    """Writes `model` as it is to the SavedModel directory `path`, serving `serve(images)`."""
    model.export(path, format="tf_saved_model", verbose=False, input_signature=input_signature(model))


def onnx_bytes(model):
    """The ONNX export of `model` as it is (see `write_onnx`), as bytes a runtime can read."""
    with tempfile.TemporaryDirectory(prefix="keras-nets-onnx-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        write_onnx(model, path)
        with open(path, "rb") as f:
            return f.read()


def onnx_converter_installed():
    """Whether tf2onnx and onnx, which write ONNX exports, are installed (checked without import)."""
    return all(importlib.util.find_spec(name) is not None for name in ("tf2onnx", "onnx"))


def input_signature(model):
    """The input signature every export uses: the model's one input, any batch size, "images"."""
    tensor = model.inputs[0]
    dtype = keras.backend.standardize_dtype(tensor.dtype)
    return [keras.InputSpec(shape=(None, *tensor.shape[1:]), dtype=dtype, name="images")]


@contextlib.contextmanager
def quiet_converters():
    """tf2onnx and the TFLite converter log every step at INFO; keep their warnings only."""
    loggers = [logging.getLogger(name) for name in ("tf2onnx", "absl")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():  # Keras' numpy 2 patch of tf2onnx probes `np.object`
            warnings.filterwarnings("ignore", message=".*np.object", category=FutureWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


# --- What an existing path may be replaced by --------------------------------------------------


def _replaceable_target(path, format):
    """The absolute form of `path`, after checking that an export there deletes nothing foreign.

    Raises a ValueError naming `path` when its directory is missing, or when `path` exists and is
    not an earlier export of `format`: another kind of file or directory, a symbolic link, a
    special file (never opened), or the current directory (or one holding it).
    """
    if os.fspath(path) == "":
        raise ValueError("path='': expected the name of a file or directory to write")
    target = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise ValueError(f"path={os.fspath(path)!r}: the directory {parent} does not exist")
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return target
    cwd = os.getcwd()
    if cwd == target or cwd.startswith(target.rstrip(os.sep) + os.sep):
        found = "the current directory" if cwd == target else "a directory holding the current one"
    elif stat.S_ISLNK(mode):
        found = "a symbolic link"
    elif format == "saved_model" and stat.S_ISDIR(mode):
        if _is_regular_file(os.path.join(target, "saved_model.pb")):
            return target
        found = "a directory that is not a SavedModel (it has no saved_model.pb)"
    elif format != "saved_model" and stat.S_ISREG(mode):
        if _holds_format(target, format):
            return target
        found = f"a file that is not {_KINDS[format]}"
    else:
        found = "a directory" if stat.S_ISDIR(mode) else (
            "a file" if stat.S_ISREG(mode) else "a special file (FIFO, socket or device)"
        )
    raise ValueError(
        f"path={os.fspath(path)!r} is {found}: expected a new path, or {_KINDS[format]} exported "
        "earlier, to replace (export never deletes what it did not write)"
    )


def _is_regular_file(path):
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _holds_format(path, format):
    """Whether the regular file `path` is an ONNX model or a TFLite flatbuffer."""
    if format == "tflite":
        with open(path, "rb") as f:
            return f.read(8)[4:8] == b"TFL3"  # the flatbuffer's file identifier
    import onnx

    try:
        model = onnx.load_model(path, load_external_data=False)
    except Exception:  # any parse error: not an ONNX model
        return False
    return model.ir_version > 0 and len(model.graph.node) > 0


def _replace(staged, target, tmp):
    """Moves the finished `staged` file or directory to `target`, replacing an earlier export."""
    if stat.S_ISDIR(_lstat_mode(target)):
        previous = os.path.join(tmp, "previous")
        os.rename(target, previous)  # removed with `tmp` once the new export is in place
        try:
            os.replace(staged, target)
        except BaseException:
            os.rename(previous, target)
            raise
    else:
        os.replace(staged, target)


def _lstat_mode(path):
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0
