"""Writing a model as ONNX, TFLite or SavedModel through Keras' own `model.export`, and the
uint8 input of an exported model; ONNX is converted in a child process running TensorFlow
(`converts_in_child_process`), so the conversion's memory goes when the child ends.

`keras_nets.inference.exporting.export` calls these on a folded copy of the model and puts the
file in place; `compile_for_inference` and the int8 path take the ONNX bytes (`onnx_bytes`).
"""

import contextlib
import gc
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
import warnings

import keras

from keras_nets.core import graph, safe_files


def takes_raw_pixels(model):
    """Whether `model` scales its input itself: a layer named "preprocess" (keras_nets puts its
    `preprocess_input` there), or a Rescaling or Normalization, right after the input."""
    first = [layer for layer in model.layers[:3] if not isinstance(layer, keras.layers.InputLayer)]
    scaling = (keras.layers.Rescaling, keras.layers.Normalization)
    return any(layer.name == "preprocess" or isinstance(layer, scaling) for layer in first)


def with_uint8_input(model):
    """`model` behind a uint8 input named "images", cast to float32 by a standard layer."""
    images = keras.Input(model.input_shape[1:], dtype="uint8", name="images")
    pixels = keras.layers.Rescaling(1.0, name="uint8_to_float")(images)  # Rescaling casts
    return keras.Model(images, model(pixels), name=model.name)


def write_onnx(model, path):
    """Writes `model` as it is (nothing folded) to the ONNX file `path` with Keras' `model.export`.

    The batch size stays free and the input is named "images"; the converters' INFO logs are
    silenced. Keras converts with tf2onnx on TensorFlow, torch.onnx on PyTorch and jax2onnx on
    JAX. On TensorFlow, tf2onnx runs in a child process, on a .keras copy of the model: converting
    a large model peaks at several GB, and that memory goes when the child ends. The child costs
    seconds (importing TensorFlow, loading the copy; README, "Fast CPU inference and export");
    `KERAS_NETS_ONNX_IN_PROCESS=1` in the environment converts in this process
    instead (faster for many small models; the conversion's memory then stays in this process).
    On JAX without jax2onnx, TensorFlow converts the model in a child process too (it is a
    default dependency). `onnx_converter_installed()` says whether a converter is there.
    Conversion directories that a killed process left in the temporary directory (older than a
    day) are removed first.
    """
    remove_stale_temporary_directories()
    if converts_in_child_process():
        _write_onnx_in_child_process(model, path)
    else:
        write_onnx_in_process(model, path)


def write_onnx_in_process(model, path):
    """`write_onnx` in this process, whatever `KERAS_NETS_ONNX_IN_PROCESS` says."""
    with quiet_converters():
        model.export(path, format="onnx", verbose=False, input_signature=input_signature(model))
    # tf2onnx leaves the conversion's graphs in reference cycles: 5.2 GB after ResNet50's
    # features at 64 px (peak 7.1 GB), held until the next full collection, which may come after
    # the next conversion. Collected now (0.8 s), the process keeps 1.7 GB.
    gc.collect()
    outputs = graph.output_structure(model)
    if keras.backend.backend() == "torch" and isinstance(outputs, dict):
        _name_outputs(path, list(outputs))


def _name_outputs(path, names):
    """Renames the outputs of the ONNX file `path` to `names`, in order: torch.onnx numbers the
    outputs of a model that returns a dict (in the dict's order), where tf2onnx uses its keys."""
    import onnx

    onnx_model = onnx.load_model(path)
    renamed = {output.name: name for output, name in zip(onnx_model.graph.output, names)}
    for node in onnx_model.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    for output in onnx_model.graph.output:
        output.name = renamed[output.name]
    onnx.save_model(onnx_model, path)


def write_tflite(model, path):
    """Writes `model` as it is to the LiteRT (TensorFlow Lite) file `path`; batch size free."""
    with quiet_converters():
        model.export(path, format="litert", verbose=False, input_signature=input_signature(model))


def write_saved_model(model, path):
    """Writes `model` as it is to the SavedModel directory `path`, serving `serve(images)`."""
    model.export(
        path, format="tf_saved_model", verbose=False, input_signature=input_signature(model)
    )


def onnx_bytes(model):
    """The ONNX export of `model` as it is (see `write_onnx`), as bytes a runtime can read."""
    with tempfile.TemporaryDirectory(prefix="keras-nets-onnx-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        write_onnx(model, path)
        with open(path, "rb") as f:
            return f.read()


def onnx_converter_installed():
    """Whether a converter that writes ONNX on the active Keras backend is installed (checked
    without importing it)."""
    return missing_onnx_converter() is None


def missing_onnx_converter():
    """None, or what is missing to write ONNX on the active Keras backend and how to install it."""

    def installed(*names):
        return all(importlib.util.find_spec(name) is not None for name in names)

    backend = keras.backend.backend()
    if backend == "torch" and installed("onnx"):
        return None
    if backend == "jax" and installed("onnx", "jax2onnx"):
        return None
    if backend in ("tensorflow", "jax") and installed("onnx", "tf2onnx", "tensorflow"):
        return None
    if backend == "torch":
        return "ONNX from PyTorch (torch.onnx) needs onnx: `pip install onnx`"
    if backend == "jax":
        return (
            "ONNX from JAX needs jax2onnx and onnx (`pip install jax2onnx`), or TensorFlow with "
            "tf2onnx and onnx to convert in a child process (`pip install keras-nets[onnx]`)"
        )
    return (
        f"ONNX from the Keras backend {backend!r} needs tf2onnx and onnx: "
        "`pip install keras-nets[onnx]`"
    )


# Where `write_onnx` converts on TensorFlow: "1" in the calling process, "0" (default) in a child.
IN_PROCESS_VARIABLE = "KERAS_NETS_ONNX_IN_PROCESS"


def converts_in_child_process():
    """Whether `write_onnx` converts in a child process running TensorFlow: on TensorFlow unless
    KERAS_NETS_ONNX_IN_PROCESS=1, and on JAX without jax2onnx."""
    backend = keras.backend.backend()
    if backend == "jax":
        return importlib.util.find_spec("jax2onnx") is None
    if backend != "tensorflow":
        return False
    value = os.environ.get(IN_PROCESS_VARIABLE, "0").strip()
    if value not in ("0", "1", ""):
        raise ValueError(
            f"{IN_PROCESS_VARIABLE}={value!r}: expected 1 (convert to ONNX in this process) or 0 "
            "(in a child process, the default)"
        )
    return value != "1"


# Run by `python -c` with KERAS_BACKEND=tensorflow: argv[1] a .keras file, argv[2] the ONNX path.
_CONVERT_ON_TENSORFLOW = """
import sys
import keras
from keras_nets.inference.writers import write_onnx_in_process
write_onnx_in_process(keras.saving.load_model(sys.argv[1], compile=False), sys.argv[2])
"""

# The temporary directories of conversions (a .keras copy, ONNX files), of int8 quantization and
# of ONNX Runtime's graph optimized for this CPU (prediction.cached.optimize).
TEMPORARY_PREFIXES = ("keras-nets-onnx-", "keras-nets-int8-", "keras-nets-ort-")


def remove_stale_temporary_directories():
    """Removes this user's conversion directories (TEMPORARY_PREFIXES) older than STALE_SECONDS
    (`safe_files.remove_stale`) from the temporary directory: a killed process leaves its .keras
    copy there, up to GBs."""
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    safe_files.remove_stale(
        entry.path
        for entry in entries
        if entry.name.startswith(TEMPORARY_PREFIXES) and entry.is_dir(follow_symlinks=False)
    )


def _write_onnx_in_child_process(model, path):
    """Writes the ONNX export of `model` (any backend) from a child process running TensorFlow,
    through a .keras copy of it in a temporary directory: the same export as in this process, and
    the conversion's memory goes when the child ends. An interruption kills the child and removes
    the directory; a failure is a RuntimeError with the child's last error line."""
    with tempfile.TemporaryDirectory(prefix="keras-nets-onnx-") as tmp:
        saved = os.path.join(tmp, "model.keras")
        model.save(saved)
        result = subprocess.run(
            [sys.executable, "-c", _CONVERT_ON_TENSORFLOW, saved, os.fspath(path)],
            env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"},
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no error message"])[-1]
        backend = keras.backend.backend()
        why = (
            f"{IN_PROCESS_VARIABLE}=1 converts in this process instead"
            if backend == "tensorflow"
            else f"as Keras on {backend} has no converter here"
        )
        raise RuntimeError(
            f"model={model.name!r}: the ONNX conversion on TensorFlow (in a child process; {why}) "
            f"failed: {last}"
        )


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
