"""Fast CPU inference and export.

    fast = keras_nets.compile_for_inference(model)      # ONNX Runtime, OpenVINO or TensorFlow
    probabilities = fast.predict(images)                # like model.predict, any batch size
    keras_nets.export(model, "xception.onnx", format="onnx")

Both start from a copy of the model with every BatchNormalization folded into the convolution
before it (`fold_batch_norms`), so the runtime sees one convolution with a bias where Keras runs a
convolution and a normalisation. The original model is never changed.
"""

import concurrent.futures
import contextlib
import importlib.util
import logging
import os
import tempfile
import warnings

import keras
import numpy as np

BACKENDS = ("onnxruntime", "openvino", "tensorflow")
FORMATS = ("onnx", "tflite", "saved_model")
_SUFFIXES = {".onnx": "onnx", ".tflite": "tflite"}
_EXTRA = {"onnxruntime": "onnx", "openvino": "openvino"}
_FOLDABLE_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


# --- BatchNormalization folding ----------------------------------------------------------------


def fold_batch_norms(model):
    """A copy of `model` with each BatchNormalization folded into the convolution before it.

    A BatchNormalization is folded when it directly follows a Conv2D, DepthwiseConv2D or
    SeparableConv2D (its pointwise part) that has no activation, normalises the convolution's
    channel axis, and is that convolution's only consumer. The convolution then gets
    `kernel * scale` and a bias `beta + (bias - mean) * scale`, `scale = gamma / sqrt(var + eps)`,
    which is what the BatchNormalization computes in inference mode. Nested Functional models are
    folded too; a Sequential model comes back as an unfolded copy. The copy has its own weights.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model={model!r}: expected a keras.Model")
    if not isinstance(model, keras.Sequential) and not hasattr(model, "_nodes_by_depth"):
        raise ValueError(
            f"model={model.name!r}: only Functional and Sequential models can be copied for "
            "inference (a subclassed model has no graph to transform)"
        )
    pairs = _foldable_pairs(model) if not isinstance(model, keras.Sequential) else {}
    folded_bns = {id(bn) for bn in pairs.values()}
    copies = []  # (original layer, its copy)

    def clone_layer(layer):
        if id(layer) in folded_bns:
            return layer  # never called: call_layer passes its input through
        if isinstance(layer, keras.Model) and not isinstance(layer, keras.Sequential):
            return fold_batch_norms(layer)
        if not isinstance(layer, keras.layers.Layer):
            return layer  # a stateless keras.ops operation; its config need not hold its arguments
        config = layer.get_config()
        if id(layer) in pairs:
            config["use_bias"] = True
        copy = layer.__class__.from_config(config)
        copies.append((layer, copy))
        return copy

    def call_layer(layer, *args, **kwargs):
        if id(layer) in folded_bns:
            return args[0]
        return layer(*args, **kwargs)

    if isinstance(model, keras.Sequential):
        folded = keras.models.clone_model(model)
        folded.set_weights(model.get_weights())
        return folded
    folded = keras.models.clone_model(model, clone_function=clone_layer, call_function=call_layer)
    for layer, copy in copies:
        if id(layer) in pairs:
            copy.set_weights(_folded_conv_weights(layer, pairs[id(layer)]))
        elif layer.weights:
            copy.set_weights(layer.get_weights())
    return folded


def _foldable_pairs(model):
    """{id(convolution): batch normalization} for every pair `fold_batch_norms` can fold."""
    nodes = [node for depth in model._nodes_by_depth.values() for node in depth]
    consumers = {}
    for node in nodes:
        for tensor in node.input_tensors:
            consumers[id(tensor)] = consumers.get(id(tensor), 0) + 1
    for tensor in model.outputs:  # a model output has a consumer outside the model
        consumers[id(tensor)] = consumers.get(id(tensor), 0) + 1

    pairs = {}
    for node in nodes:
        bn = node.operation
        if not isinstance(bn, keras.layers.BatchNormalization) or len(node.input_tensors) != 1:
            continue
        tensor = node.input_tensors[0]
        conv = tensor._keras_history.operation
        if (
            isinstance(conv, _FOLDABLE_CONVS)
            and len(conv._inbound_nodes) == 1
            and len(bn._inbound_nodes) == 1
            and consumers.get(id(tensor)) == 1
            and conv.activation is keras.activations.linear
            and _channel_axis(conv, len(tensor.shape)) == bn.axis % len(tensor.shape)
        ):
            pairs[id(conv)] = bn
    return pairs


def _channel_axis(conv, rank):
    return rank - 1 if conv.data_format == "channels_last" else 1


def _folded_conv_weights(conv, bn):
    """The weights of `conv` with `use_bias=True` that compute `bn(conv(x))` in inference mode."""
    mean = np.asarray(bn.moving_mean, dtype="float64")
    variance = np.asarray(bn.moving_variance, dtype="float64")
    gamma = np.asarray(bn.gamma, dtype="float64") if bn.scale else np.ones_like(mean)
    beta = np.asarray(bn.beta, dtype="float64") if bn.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance + bn.epsilon)

    weights = conv.get_weights()
    bias = np.asarray(weights.pop(), dtype="float64") if conv.use_bias else np.zeros_like(mean)
    new_bias = beta + (bias - mean) * scale
    if isinstance(conv, keras.layers.SeparableConv2D):
        depthwise, pointwise = weights  # the pointwise kernel makes the output channels
        weights = [depthwise, pointwise * scale]
    elif isinstance(conv, keras.layers.DepthwiseConv2D):
        (kernel,) = weights  # (h, w, in, multiplier): output channel = in * multiplier + m
        weights = [kernel * scale.reshape(kernel.shape[2:])]
    else:
        (kernel,) = weights  # (h, w, in / groups, out)
        weights = [kernel * scale]
    dtype = conv.get_weights()[0].dtype
    return [w.astype(dtype) for w in weights] + [new_bias.astype(dtype)]


# --- Compiled inference --------------------------------------------------------------------------


def compile_for_inference(model, backend="auto"):
    """Compiles `model` for fast CPU inference; the result has `.predict(x)` like `model.predict`.

    The model's BatchNormalizations are folded into its convolutions (`fold_batch_norms`), then the
    folded copy runs on `backend`:
      "onnxruntime"  ONNX Runtime (`pip install keras-nets[onnx]`), through an ONNX export;
      "openvino"     OpenVINO (`pip install keras-nets[openvino]`), through an ONNX export;
      "tensorflow"   a compiled TensorFlow function, always available;
      "auto"         the first of these that is installed, in the order `available_backends()`
                     gives (the fastest first, as measured by benchmarks/throughput.py).
    Threads follow the CPU cores this process may run on (`thread_count()`): ONNX Runtime and
    OpenVINO run a batch of one on all cores, and a larger batch as one part per core, side by
    side. Outputs equal the Keras model's up to float rounding (a relative 1e-4 or better).
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model={model!r}: expected a keras.Model")
    if len(model.inputs) != 1:
        raise ValueError(
            f"model={model.name!r} has {len(model.inputs)} inputs; compile_for_inference takes "
            "models with one image input"
        )
    if backend == "auto":
        backend = available_backends()[0]
    elif backend not in BACKENDS:
        raise ValueError(
            f"backend={backend!r}: expected 'auto' or one of {', '.join(map(repr, BACKENDS))}"
        )
    elif backend not in available_backends():
        raise ImportError(
            f"backend={backend!r} is not installed; install it with "
            f"`pip install keras-nets[{_EXTRA[backend]}]`"
        )
    folded = fold_batch_norms(model)
    run = {
        "onnxruntime": _onnxruntime_runner,
        "openvino": _openvino_runner,
        "tensorflow": _tensorflow_runner,
    }[backend](folded)
    return CompiledModel(folded, backend, run)


def available_backends():
    """The installed inference backends, fastest first; "tensorflow" is always there."""
    if not (_importable("tf2onnx") and _importable("onnx")):
        return ["tensorflow"]  # both runtimes read the model's ONNX export
    return [name for name in ("onnxruntime", "openvino") if _importable(name)] + ["tensorflow"]


class CompiledModel:
    """A model compiled by `compile_for_inference`: `.predict(x)` returns numpy arrays.

    Attributes:
      backend: the runtime it runs on, "onnxruntime", "openvino" or "tensorflow".
      model: the folded Keras copy it was compiled from.
    """

    def __init__(self, model, backend, run):
        self.model = model
        self.backend = backend
        self._run = run
        self._input_shape = tuple(model.inputs[0].shape[1:])
        self._input_dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
        self._single_output = len(model.outputs) == 1

    def __repr__(self):
        return f"<CompiledModel {self.model.name!r} on {self.backend}>"

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
        return outputs[0] if self._single_output else outputs

    __call__ = predict


def thread_count():
    """The CPU cores this process may run on: the runtimes' intra-op thread count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _importable(module):
    return importlib.util.find_spec(module) is not None


def _input_signature(model):
    import tensorflow as tf

    tensor = model.inputs[0]
    return [tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype, name="images")]


def _tf_function(model):
    import tensorflow as tf

    return tf.function(
        lambda images: model(images, training=False),
        input_signature=_input_signature(model),
        autograph=False,
    )


def _tensorflow_runner(model):
    function = _tf_function(model)

    def run(batch):
        return [np.asarray(y) for y in keras.tree.flatten(function(batch))]

    return run


def _onnxruntime_runner(model):
    """ONNX Runtime on the ONNX export. As with OpenVINO, a batch of one runs on all cores and a
    larger batch in one single-threaded part per core, side by side (`session.run` releases the
    GIL, so Python threads are enough)."""
    import onnxruntime

    onnx_model = _onnx_bytes(model)
    threads = thread_count()

    def session(intra_op_threads):
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        return onnxruntime.InferenceSession(
            onnx_model, options, providers=["CPUExecutionProvider"]
        )

    whole = session(threads)
    input_name = whole.get_inputs()[0].name
    if threads == 1:
        return lambda batch: whole.run(None, {input_name: batch})
    single = session(1)
    pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="keras-nets-ort")

    def run(batch):
        if len(batch) < threads:
            return whole.run(None, {input_name: batch})
        parts = pool.map(lambda part: single.run(None, {input_name: part}), np.array_split(batch, threads))
        return [np.concatenate(outputs) for outputs in zip(*parts)]

    return run


def _openvino_runner(model):
    """OpenVINO on the ONNX export (its TensorFlow frontend, in openvino 2026.4, mistranslates
    ShuffleNetV2's channel shuffle; the ONNX one does not).

    A batch of one runs as a single request on all cores. A larger batch is split in one part per
    core, run at once as parallel single-threaded requests ("streams"): on a few cores that keeps
    every core busy where one request would wait on its least parallel layers.
    """
    import openvino

    core = openvino.Core()
    network = core.read_model(_onnx_bytes(model), b"")
    threads = thread_count()
    latency = core.compile_model(
        network, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    )
    request = latency.create_infer_request()
    n_outputs = len(latency.outputs)

    def outputs_of(request):
        return [np.array(request.get_output_tensor(i).data) for i in range(n_outputs)]

    def run_whole(batch):
        request.infer([batch])
        return outputs_of(request)

    if threads == 1:
        return run_whole
    throughput = core.compile_model(
        network,
        "CPU",
        {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": threads, "INFERENCE_NUM_THREADS": threads},
    )
    queue = openvino.AsyncInferQueue(throughput, threads)
    parts = {}
    queue.set_callback(lambda done, index: parts.__setitem__(index, outputs_of(done)))

    def run(batch):
        if len(batch) < threads:
            return run_whole(batch)
        for index, part in enumerate(np.array_split(batch, threads)):
            queue.start_async([part], index)
        queue.wait_all()
        return [np.concatenate(outputs) for outputs in zip(*(parts[i] for i in range(threads)))]

    return run


def _onnx_bytes(model):
    with tempfile.TemporaryDirectory(prefix="keras-nets-onnx-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        _write_onnx(model, path)
        with open(path, "rb") as f:
            return f.read()


# --- Export --------------------------------------------------------------------------------------


def export(model, path, format=None):
    """Writes `model` (BatchNormalizations folded, see `fold_batch_norms`) for an inference runtime.

    Args:
      model: a Functional or Sequential Keras model with one input.
      path: where to write: a file for "onnx" and "tflite", a directory for "saved_model". It is
        written under a temporary name next to `path` and renamed when complete, so a failed
        export leaves nothing behind and an existing `path` is replaced only by a complete one.
      format: "onnx" (needs `keras-nets[onnx]`; run it with ONNX Runtime), "tflite" (LiteRT /
        TensorFlow Lite) or "saved_model" (a TensorFlow SavedModel with a `serve` function);
        None picks it from the suffix of `path` (.onnx, .tflite, anything else: saved_model).
        The batch size stays free in every format.

    Returns:
      `path`.
    """
    if format is None:
        format = _SUFFIXES.get(os.path.splitext(os.fspath(path))[1].lower(), "saved_model")
    if format not in FORMATS:
        raise ValueError(
            f"format={format!r}: expected one of {', '.join(map(repr, FORMATS))}"
        )
    if not isinstance(model, keras.Model):
        raise ValueError(f"model={model!r}: expected a keras.Model")
    if format == "onnx" and not (_importable("tf2onnx") and _importable("onnx")):
        raise ImportError("format='onnx' needs tf2onnx and onnx: `pip install keras-nets[onnx]`")
    target = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise ValueError(f"path={os.fspath(path)!r}: the directory {parent} does not exist")

    folded = fold_batch_norms(model)
    writer = {"onnx": _write_onnx, "tflite": _write_tflite, "saved_model": _write_saved_model}
    with tempfile.TemporaryDirectory(dir=parent, prefix=".keras-nets-export-") as tmp:
        staged = os.path.join(tmp, "model" + {"onnx": ".onnx", "tflite": ".tflite"}.get(format, ""))
        writer[format](folded, staged)
        _replace(staged, target, tmp)
    return path


def _write_onnx(model, path):
    with _quiet_converters():
        model.export(path, format="onnx", verbose=False, input_signature=_input_signature(model))


def _write_tflite(model, path):
    with _quiet_converters():
        model.export(path, format="litert", verbose=False, input_signature=_input_signature(model))


def _write_saved_model(model, path):
    model.export(
        path, format="tf_saved_model", verbose=False, input_signature=_input_signature(model)
    )


def _replace(staged, target, tmp):
    """Moves the finished `staged` file or directory to `target`, replacing what is there."""
    if os.path.isdir(target) and not os.path.islink(target):
        old = os.path.join(tmp, "previous")
        os.rename(target, old)  # removed with `tmp`
    os.replace(staged, target)


@contextlib.contextmanager
def _quiet_converters():
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
