"""ONNX Runtime on the model's ONNX export (`pip install keras-nets[onnx]`)."""

import concurrent.futures
import importlib.util

from keras_nets.inference.runtimes import split_per_core
from keras_nets.inference.writers import onnx_bytes, onnx_converter_installed

NAME = "onnxruntime"
EXTRA = "onnx"


def is_installed():
    return onnx_converter_installed() and importlib.util.find_spec("onnxruntime") is not None


def compile(model, threads):
    """A batch of one runs on all cores, a larger batch as one single-threaded session call per
    core, side by side (`session.run` releases the GIL, so Python threads are enough)."""
    return compile_onnx(onnx_bytes(model), threads)


def compile_onnx(onnx_model, threads):
    """`compile` for a model already in ONNX (bytes): a float32 export, or its int8 form."""
    import onnxruntime

    def session(intra_op_threads):
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        if intra_op_threads > 1:
            # Its worker threads spin during a call (fast) but stop at its end: left spinning,
            # they take the cores from the single-threaded sessions a split batch runs next.
            # MobileNetV2, a batch of 1 then a split batch of 8: 128 -> 209 img/s float32,
            # 191 -> 330 int8; a batch of 1 alone unchanged (benchmarks/onnxruntime_spinning.py).
            options.add_session_config_entry("session.force_spinning_stop", "1")
        return onnxruntime.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])

    whole = session(threads)
    input_name = whole.get_inputs()[0].name
    if threads == 1:
        return lambda batch: whole.run(None, {input_name: batch})
    single = session(1)
    pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="keras-nets-ort")
    return split_per_core(
        threads,
        lambda batch: whole.run(None, {input_name: batch}),
        lambda parts: list(pool.map(lambda part: single.run(None, {input_name: part}), parts)),
    )
