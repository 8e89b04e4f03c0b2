"""Export: a model, its BatchNormalizations folded, written as an ONNX, TFLite or SavedModel file.

    keras_nets.export(model, "xception.onnx")                           # ONNX Runtime, OpenVINO
    keras_nets.export(model, "xception.tflite")                         # LiteRT / TensorFlow Lite
    keras_nets.export(model, "xception_serving", format="saved_model")  # TensorFlow Serving

Every file is written through Keras' own `model.export`, under a temporary name next to its
destination, and renamed when complete. A destination that exists is replaced only when it holds
an earlier export of the same format (a SavedModel directory: one keras-nets wrote, holding only
what it wrote, as its `keras_nets_export.json` lists); anything else there is refused, untouched,
unless `overwrite=True`. SIGTERM during an export is handled like Ctrl-C: the temporary files go,
the conversion's child process is ended, then the process ends as SIGTERM asked.
"""

import json
import os
import stat
import tempfile

import keras
import numpy as np

from keras_nets.core import safe_files

# Moved to keras_nets.inference.writers and keras_nets.core.safe_files, still reachable here.
from keras_nets.core.safe_files import STALE_SECONDS  # noqa: F401
from keras_nets.inference import quantization
from keras_nets.inference.folding import check_graph_model, fold_batch_norms
from keras_nets.inference.writers import (  # noqa: F401
    IN_PROCESS_VARIABLE,
    TEMPORARY_PREFIXES,
    converts_in_child_process,
    input_signature,
    missing_onnx_converter,
    onnx_bytes,
    onnx_converter_installed,
    quiet_converters,
    remove_stale_temporary_directories,
    takes_raw_pixels,
    with_uint8_input,
    write_onnx,
    write_onnx_in_process,
    write_saved_model,
    write_tflite,
)

FORMATS = ("onnx", "tflite", "saved_model")
_SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite", "saved_model": ""}
_KINDS = {"onnx": "an ONNX model", "tflite": "a TFLite model", "saved_model": "a SavedModel"}
# Written into every SavedModel directory export writes: the files it holds, so that a later export
# replaces the directory only when it holds nothing else (the user's files put there stay safe).
EXPORT_RECORD = "keras_nets_export.json"


def export(
    model,
    path,
    format=None,
    include_preprocessing=False,
    *,
    precision="float32",
    calibration=None,
    transform=None,
    overwrite=False,
):
    """Writes `model` (BatchNormalizations folded, see `fold_batch_norms`) for an inference runtime.

    Args:
      model: a Functional or Sequential Keras model with one input.
      path: where to write: a file for "onnx" and "tflite", a directory for "saved_model". It is
        written under a temporary name next to `path` and renamed when complete, so a failed
        export leaves nothing behind. An existing `path` is replaced only when it holds an earlier
        export of the same format: an ONNX or a TFLite file, or a SavedModel directory that
        keras-nets exported and that holds nothing but what the export wrote (its
        `keras_nets_export.json` lists it); for anything else a ValueError names it and nothing
        is touched, unless `overwrite`.
      format: "onnx" (needs `keras-nets[onnx]`; run it with ONNX Runtime), "tflite" (LiteRT /
        TensorFlow Lite) or "saved_model" (a TensorFlow SavedModel with a `serve` function);
        None picks it from the suffix of `path` (.onnx, .tflite, anything else: saved_model).
        The batch size stays free in every format.
      include_preprocessing: the file's input is uint8 images (0-255 RGB), as serving code
        decodes them, cast to float inside. For a model that preprocesses its input itself:
        `create_model(..., include_preprocessing=True)`, MobileNetV3, a `keras-nets train`
        classifier; any other model is a ValueError.
      precision: "float32", or "int8" (format "onnx" only): statically quantized, as
        `compile_for_inference(..., precision="int8")` runs it (`inference.quantization`).
      calibration, transform: with precision="int8", the calibration images, as
        `compile_for_inference` takes them.
      overwrite: replace whatever is at `path` (never the current directory or one holding it).

    Returns:
      `path`.
    """
    if format is None:
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        format = {".onnx": "onnx", ".tflite": "tflite"}.get(suffix, "saved_model")
    if format not in FORMATS:
        raise ValueError(f"format={format!r}: expected one of {', '.join(map(repr, FORMATS))}")
    check_format_on_backend(format)
    check_graph_model(model)
    if include_preprocessing and not takes_raw_pixels(model):
        raise ValueError(
            f"include_preprocessing=True: model {model.name!r} does not preprocess its input "
            "itself; build it with create_model(..., include_preprocessing=True)"
        )
    quantization.check_precision(precision, calibration, format=format)
    if format == "onnx" and not onnx_converter_installed():
        raise ImportError(f"format='onnx': {missing_onnx_converter()}")
    target = _replaceable_target(path, format, overwrite)
    if precision == "int8":
        images = quantization.calibration_images(model, calibration, transform)
        if include_preprocessing:  # the file takes uint8 pixels
            images = np.clip(np.rint(images), 0, 255).astype("uint8")

    folded = fold_batch_norms(model)
    if include_preprocessing:
        folded = with_uint8_input(folded)
    writer = {"onnx": write_onnx, "tflite": write_tflite, "saved_model": write_saved_model}[format]
    if precision == "int8":
        writer = quantization.int8_onnx_writer(images)
    with (
        safe_files.terminate_as_interrupt(resend=True),
        tempfile.TemporaryDirectory(
            dir=os.path.dirname(target), prefix=".keras-nets-export-"
        ) as tmp,
    ):
        staged = os.path.join(tmp, "model" + _SUFFIXES[format])
        writer(folded, staged)
        if format == "saved_model":
            _write_export_record(staged, format)
        _replace(staged, target, tmp)
    return path


# (Keras backend, format) pairs that Keras cannot export, and why: refused before any work.
UNSUPPORTED_ON_BACKEND = {
    ("jax", "tflite"): "Keras writes LiteRT from TensorFlow or PyTorch only",
    ("torch", "saved_model"): "Keras' torch.export path to SavedModel fails on these models",
}


def check_format_on_backend(format):
    backend = keras.backend.backend()
    why = UNSUPPORTED_ON_BACKEND.get((backend, format))
    if why:
        raise ValueError(
            f"format={format!r} on the Keras backend {backend!r}: {why}; export with "
            "format='onnx', or run with KERAS_BACKEND=tensorflow"
        )


# --- What an existing path may be replaced by --------------------------------------------------


def _replaceable_target(path, format, overwrite=False):
    """The absolute form of `path`, after checking that an export there deletes nothing foreign.

    Raises a ValueError naming `path` when its directory is missing or not writable, or when `path`
    exists and is not an earlier export of `format`: another kind of file or directory, a
    SavedModel keras-nets did not write or one holding other files, a symbolic link, a special
    file (never opened); or is the current directory (or one holding it), even with `overwrite`.
    """
    if os.fspath(path) == "":
        raise ValueError("path='': expected the name of a file or directory to write")
    target = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise ValueError(f"path={os.fspath(path)!r}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"path={os.fspath(path)!r}: the directory {parent} is not writable")
    try:
        os.lstat(target)
    except FileNotFoundError:
        return target
    except OSError as error:  # a name too long, ...
        raise ValueError(f"path={os.fspath(path)!r}: {error.strerror}") from None
    cwd = os.getcwd()
    if cwd == target or cwd.startswith(target.rstrip(os.sep) + os.sep):
        found = "the current directory" if cwd == target else "a directory holding the current one"
        raise ValueError(
            f"path={os.fspath(path)!r} is {found}: expected a new path, or {_KINDS[format]} "
            "exported earlier, to replace (export never deletes what it did not write)"
        )
    if overwrite:  # documented as replacing whatever is there (a link itself, not its target)
        return target
    # The shared rule (safe_files.overwrite_problem), then: only an earlier export of ours goes.
    problem = safe_files.overwrite_problem(target, directory=format == "saved_model")
    if problem == safe_files.EXISTS and format == "saved_model":
        foreign = _not_exported(target, format)
        if foreign is None:
            return target
        found = f"a directory {foreign}"
    elif problem == safe_files.EXISTS:
        if _holds_format(target, format):
            return target
        found = f"a file that is not {_KINDS[format]}"
    else:
        found = _FOUND.get(problem, "a special file (FIFO, socket or device)")
    raise ValueError(
        f"path={os.fspath(path)!r} is {found}: expected a new path, or {_KINDS[format]} exported "
        "earlier, to replace (export never deletes what it did not write; overwrite=True replaces "
        "it)"
    )


# How a refusal names what `safe_files.overwrite_problem` found at the path.
_FOUND = {
    "a regular file": "a file",
    "a directory": "a directory",
    "a symbolic link": "a symbolic link",
}


def _entries(root):
    """Every file and directory under `root`, relative to it, "/"-separated; None when a
    symbolic link or special file is among them (never one of ours). An unreadable directory is
    an OSError: what it holds cannot be known."""

    def unreadable(error):
        raise error

    found = []
    for directory, dirs, files in os.walk(root, onerror=unreadable):
        for name in dirs + files:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                return None
            found.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(found)


def _write_export_record(directory, format):
    """Lists what the export in `directory` holds, in its EXPORT_RECORD."""
    record = {"written_by": "keras_nets.export", "format": format, "files": _entries(directory)}
    with open(os.path.join(directory, EXPORT_RECORD), "w") as f:
        json.dump(record, f, indent=1)


def _not_exported(directory, format):
    """None when `directory` is an export of `format` by keras-nets holding nothing else; else
    why not, as "that ..." words."""
    record_path = os.path.join(directory, EXPORT_RECORD)
    if not safe_files.is_regular_file(record_path, follow_symlinks=False):
        why = (
            "has no saved_model.pb"
            if not safe_files.is_regular_file(
                os.path.join(directory, "saved_model.pb"), follow_symlinks=False
            )
            else f"has no {EXPORT_RECORD}"
        )
        return f"that keras-nets did not export (it {why})"
    try:
        with open(record_path) as f:
            record = json.load(f)
        listed = set(record["files"]) | {EXPORT_RECORD}
        if record["format"] != format:
            return f"that holds a keras-nets export of format {record['format']!r}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"whose {EXPORT_RECORD} is not one keras-nets wrote"
    try:
        present = _entries(directory)
    except OSError as error:
        return f"that cannot be read entirely ({error.filename}: {error.strerror})"
    if present is None:
        return "holding a symbolic link or special file, which an export never writes"
    others = sorted(set(present) - listed)
    if others:
        return f"holding files the export did not write ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''})"
    return None


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
    """Moves the finished `staged` file or directory to `target`, replacing an earlier export
    (a file by a file atomically; anything else moved into `tmp` first, put back on failure)."""
    mode = _lstat_mode(target)
    if mode and not (stat.S_ISREG(mode) and stat.S_ISREG(_lstat_mode(staged))):
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
