"""compile_for_inference: a model's BatchNormalizations folded, then run on an inference runtime.

fast = keras_nets.compile_for_inference(model)   # ONNX Runtime, else OpenVINO, else TensorFlow
probabilities = fast.predict(images)             # like model.predict: numpy, any batch size
fast = keras_nets.compile_for_inference(model, precision="int8", calibration=images)
"""

import warnings

import keras
import numpy as np

from keras_nets.core import graph
from keras_nets.inference import cache as compiled_cache
from keras_nets.inference import quantization
from keras_nets.inference.folding import check_graph_model, fold_batch_norms
from keras_nets.inference.runtimes import RUNTIMES, available_runtimes, get_runtime, thread_count
from keras_nets.inference.writers import onnx_bytes


def compile_for_inference(
    model,
    runtime="auto",
    *,
    threads=None,
    precision="float32",
    calibration=None,
    transform=None,
    backend=None,
    cache=True,
):
    """Compiles `model` for fast CPU inference; the result has `.predict(x)` like `model.predict`.

    The model's BatchNormalizations are folded into its convolutions (`fold_batch_norms`), then the
    folded copy runs on `runtime`. Outputs equal the Keras model's up to float rounding (within
    5e-4 of the largest output, 1e-4 for most models). The model itself is not changed.

    Args:
      model: a Functional or Sequential Keras model with one input.
      runtime: "onnxruntime" (ONNX Runtime, `pip install keras-nets[onnx]`), "openvino"
        (`pip install keras-nets[openvino]`), "tensorflow" (a compiled TensorFlow function, there
        whenever Keras runs on TensorFlow), or "auto": the first installed of RUNTIMES, in that
        order (the fastest first, as measured by benchmarks/throughput.py).
      threads: CPU cores to use; None: every core this process may run on (`thread_count()`).
        ONNX Runtime and OpenVINO run a batch smaller than `threads` on all of them, and a larger
        batch as one single-threaded part per core, side by side.
      precision: "float32", or "int8": the folded model's ONNX export statically quantized
        (`keras_nets.inference.quantization`: weights per channel, activation ranges measured
        on `calibration`), run on ONNX Runtime (the only runtime for int8).
      calibration: with precision="int8", 32 to 64 images (more: 64 of them, evenly spread) like
        the ones to predict: a numpy array as the model takes them, or a folder of image files
        read through `transform`.
      transform: for a `calibration` folder: an `EvalTransform`, e.g.
        `keras_nets.eval_transform("resnet50", size)`; None for a model that preprocesses its
        input itself (a `keras-nets train` classifier).
      backend: deprecated name of `runtime` (Keras calls TensorFlow, JAX and PyTorch "backends").
      cache: keep the converted ONNX model in the compiled-model cache
        (`keras_nets.inference.cache`, under $KERAS_HOME) and take it from there next time: the
        same model, weights, precision and calibration images skip the conversion (and the
        quantization). False converts every time and stores nothing (e.g. random weights that
        will never be seen again). Runtimes that do not read ONNX (tensorflow) never use it.

    Returns:
      A `CompiledModel`.
    """
    if backend is not None:
        warnings.warn(
            "compile_for_inference(backend=...) is deprecated: use runtime=...",
            DeprecationWarning,
            stacklevel=2,
        )
        if runtime not in ("auto", backend):
            raise ValueError(f"runtime={runtime!r}, backend={backend!r}: give only runtime")
        runtime = backend
    check_graph_model(model)
    if len(model.inputs) != 1:
        raise ValueError(
            f"model={model.name!r} has {len(model.inputs)} inputs; compile_for_inference takes "
            "models with one image input"
        )
    if threads is None:
        threads = thread_count()
    elif not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads={threads!r}: expected a positive integer or None")
    quantization.check_precision(precision, calibration, runtime=runtime)
    images = None
    if precision == "int8":
        images = quantization.calibration_images(model, calibration, transform)
        runtime = choose_runtime(runtime, quantization.INT8_RUNTIMES)
    else:
        runtime = choose_runtime(runtime)
    folded = fold_batch_norms(model)
    module = get_runtime(runtime)
    key = None
    if hasattr(module, "compile_onnx"):  # a runtime that reads ONNX: the cache's form
        key = compiled_cache.model_key(model, precision, images) if cache else None
        float_key = None  # for int8: the float32 entry it quantizes
        if cache and precision == "int8":
            float_key = compiled_cache.model_key(model, "float32")
        run = module.compile_onnx(
            onnx_model(folded, precision, images, key, float_key), int(threads)
        )
    else:
        run = module.compile(folded, int(threads))
    return CompiledModel(folded, runtime, run, int(threads), precision, cache_key=key)


def onnx_model(folded, precision, images=None, key=None, float_key=None):
    """The ONNX bytes of a folded model (quantized on `images` for int8): the cache's entry
    `key` if it holds one that passes its check, else made now and stored under `key`. For int8,
    the float32 conversion it quantizes is the cache's entry `float_key` when there is one, and
    is stored there when not: the conversion is the long part (tf2onnx), so a model compiled
    once in either precision converts no more."""
    data = compiled_cache.load_model(key) if key else None
    if data is not None:
        return data
    data = compiled_cache.load_model(float_key) if float_key else None
    if data is None:
        data = onnx_bytes(folded)
        if float_key:
            store_model(float_key, data, folded.name, "float32")
    if precision == "int8":
        data = quantization.quantize_onnx(data, images)
    if key:
        store_model(key, data, folded.name, precision)
    return data


def store_model(key, data, name, precision):
    try:
        compiled_cache.store_model(key, data, {"model": name, "precision": precision})
    except OSError as error:  # a read-only home or a full disk: only the next run pays
        warnings.warn(
            f"the compiled-model cache ({compiled_cache.cache_dir()}) cannot be written: "
            f"{error}; the next run converts the model again",
            stacklevel=4,
        )


def choose_runtime(runtime="auto", candidates=RUNTIMES):
    """The runtime `compile_for_inference(model, runtime)` uses: `runtime` itself if installed,
    or for "auto" the first installed of `candidates` (RUNTIMES, or INT8_RUNTIMES for int8).
    Raises a ValueError for an unknown name and an ImportError, naming the pip extra, for a
    runtime that is not installed."""
    if runtime == "auto":
        installed = [name for name in available_runtimes() if name in candidates]
        if not installed:
            raise ImportError(
                "no inference runtime is installed: `pip install keras-nets[onnx]` for ONNX Runtime"
            )
        return installed[0]
    if runtime not in RUNTIMES:
        raise ValueError(
            f"runtime={runtime!r}: expected 'auto' or one of {', '.join(map(repr, RUNTIMES))}"
        )
    module = get_runtime(runtime)
    if not module.is_installed():
        how = f"`pip install keras-nets[{module.EXTRA}]`" if module.EXTRA else "its Keras backend"
        raise ImportError(f"runtime={runtime!r} is not installed; install it with {how}")
    return runtime


class CompiledModel:
    """A model compiled by `compile_for_inference`: `.predict(x)` returns numpy arrays.

    Attributes:
      runtime: the runtime it runs on, one of RUNTIMES.
      threads: the CPU cores it uses.
      precision: "float32" or "int8".
      model: the folded Keras copy it was compiled from (float32 in either case).
      cache_key: the key of its ONNX model in the compiled-model cache
        (`keras_nets.inference.cache`), or None when it was not cached.
    """

    def __init__(self, model, runtime, run, threads, precision="float32", cache_key=None):
        self.model = model
        self.cache_key = cache_key  # its entry in the compiled-model cache, or None
        self.runtime = runtime
        self.threads = threads
        self.precision = precision
        self._run = run
        self._input_shape = tuple(model.inputs[0].shape[1:])
        self._input_dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
        self._single_output = len(model.outputs) == 1
        self._output_structure = graph.output_structure(model)

    @property
    def backend(self):
        """Deprecated name of `runtime`."""
        warnings.warn("CompiledModel.backend is deprecated: use .runtime", DeprecationWarning, 2)
        return self.runtime

    def __repr__(self):
        int8 = ", int8" if self.precision == "int8" else ""
        return (
            f"<CompiledModel {self.model.name!r} on {self.runtime}{int8}, {self.threads} threads>"
        )

    def predict(self, x, batch_size=32, verbose=0):
        """The model's outputs for the batch `x`, as `model.predict(x)` returns them.

        Args:
          x: images, shape (n, height, width, channels) as the model takes them; any n >= 1.
          batch_size: how many images go through the runtime at once.
          verbose: accepted for compatibility with `model.predict`; nothing is printed.
        """
        x = np.ascontiguousarray(x, dtype=self._input_dtype)
        expected = (None, *self._input_shape)
        if x.ndim != len(expected) or any(
            want is not None and got != want for got, want in zip(x.shape[1:], self._input_shape)
        ):
            raise ValueError(
                f"x has shape {x.shape}; model {self.model.name!r} takes batches of shape "
                f"{expected}"
            )
        if len(x) == 0:
            raise ValueError("x is an empty batch; expected at least one image")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
        chunks = [self._run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        outputs = [np.concatenate(parts) if len(parts) > 1 else parts[0] for parts in zip(*chunks)]
        if isinstance(self._output_structure, dict):  # as model.predict: {name: array}
            return keras.tree.pack_sequence_as(self._output_structure, outputs)
        return outputs[0] if self._single_output else outputs

    __call__ = predict
