"""The inference runtimes `compile_for_inference` can run a model on: one module each, here.

RUNTIMES lists their names in preference order: `compile_for_inference(model)` (runtime "auto")
takes the first one installed. Each runtime module declares:

  NAME             its name, the `runtime=` value that picks it (the module's own name);
  EXTRA            the pip extra that installs it (`pip install keras-nets[EXTRA]`), or None;
  is_installed()   whether it can run here; cheap, imports nothing heavy;
  compile(model, threads)
                   a function `run(batch) -> [numpy array per model output]` that runs `model`
                   (a Functional Keras model, BatchNormalizations already folded) on a batch, a
                   numpy array the model's input shape and dtype, using `threads` CPU cores.
  compile_onnx(onnx_model, threads)
                   (the runtimes that read ONNX) the same from ONNX bytes: how the int8 model,
                   quantized on ONNX, runs (`quantization.INT8_RUNTIMES` lists who runs it).

A runtime imports its own library inside `compile`, never at module level, so importing
`keras_nets.inference` needs none of them. A new runtime is a module here and its name in RUNTIMES.
"""

import importlib
import importlib.util
import os

import numpy as np

# The fastest first, as measured by benchmarks/throughput.py on 2 to 8 cores.
RUNTIMES = ("onnxruntime", "openvino", "tensorflow")
# What the ONNX runtimes' modules imported from `writers` (which imports Keras) until the warm
# start of `predict --fast` ran them without Keras: still their names, resolved on first use.
WRITERS_NAMES = ("onnx_bytes", "onnx_converter_installed")


def writers_names(module):
    """A runtime module's `__getattr__`, giving the names of WRITERS_NAMES from `writers`."""

    def getattr_(name):
        if name not in WRITERS_NAMES:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        from keras_nets.inference import writers

        return getattr(writers, name)

    return getattr_


def onnx_runtime_installed(package):
    """`is_installed` of a runtime that reads ONNX: the converter and `package` are there."""
    from keras_nets.inference.writers import onnx_converter_installed  # imports Keras

    return onnx_converter_installed() and importlib.util.find_spec(package) is not None


def compile_from_onnx(compile_onnx, model, threads):
    """`compile` of a runtime that reads ONNX: `compile_onnx` on the model's ONNX export."""
    from keras_nets.inference.writers import onnx_bytes  # imports Keras

    return compile_onnx(onnx_bytes(model), threads)


def get_runtime(name):
    """The module of the runtime `name`, one of RUNTIMES."""
    if name not in RUNTIMES:
        raise ValueError(f"runtime={name!r}: expected one of {', '.join(map(repr, RUNTIMES))}")
    return importlib.import_module(f"{__name__}.{name}")


def available_runtimes():
    """The names of the installed runtimes, in RUNTIMES' preference order."""
    return [name for name in RUNTIMES if get_runtime(name).is_installed()]


def split_per_core(threads, run_whole, run_parts):
    """A runner that gives each core its own part of a batch, for runtimes that can do that.

    Args:
      threads: how many cores to use.
      run_whole: `run_whole(batch) -> outputs`, one call on all `threads` cores.
      run_parts: `run_parts([part, ...]) -> [outputs, ...]`, the parts run side by side, each on
        a single core, results in the parts' order.

    Returns:
      `run(batch) -> outputs`: a batch of fewer than `threads` images runs whole; a larger batch
      in `threads` parts side by side, its outputs joined in order. On a few cores that keeps every
      core busy where one call would wait on its least parallel layers.
    """
    if threads == 1:
        return run_whole

    def run(batch):
        if len(batch) < threads:
            return run_whole(batch)
        parts = run_parts(np.array_split(batch, threads))
        return [np.concatenate(outputs) for outputs in zip(*parts)]

    return run


def thread_count():
    """The CPU cores this process may run on: the runtimes' default thread count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
