"""ONNX Runtime on the model's ONNX export (`pip install keras-nets[onnx]`)."""

import concurrent.futures
import functools

from keras_nets.inference import runtimes
from keras_nets.inference.runtimes import split_per_core

NAME = "onnxruntime"
EXTRA = "onnx"
__getattr__ = runtimes.writers_names(
    __name__
)  # its names from before the warm start kept Keras out


def is_installed():
    return runtimes.onnx_runtime_installed("onnxruntime")


def compile(model, threads):
    """A batch of one runs on all cores, a larger batch as one single-threaded session call per
    core, side by side (`session.run` releases the GIL, so Python threads are enough)."""
    return runtimes.compile_from_onnx(compile_onnx, model, threads)


def compile_onnx(onnx_model, threads, optimized_to=None):
    """`compile` for a model already in ONNX (bytes): a float32 export, or its int8 form.
    `optimized_to`: a path where ONNX Runtime writes the graph as it optimized it for this CPU
    (what the compiled-model cache keeps for the next warm start)."""
    import onnxruntime

    def session(intra_op_threads, optimized_to=None):
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
        if optimized_to is not None:
            options.optimized_model_filepath = str(optimized_to)
        return onnxruntime.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])

    whole = session(threads, optimized_to)
    input_name = whole.get_inputs()[0].name
    if threads == 1:
        return lambda batch: whole.run(None, {input_name: batch})
    pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="keras-nets-ort")

    @functools.cache
    def single():
        # Made at the first batch of `threads` images or more: one photo never waits for it
        # (creating it costs Xception's warm start another 0.4 s).
        return session(1)

    def run_parts(parts):
        one_core = single()  # here, not in the pool's threads: one session, made once
        return list(pool.map(lambda part: one_core.run(None, {input_name: part}), parts))

    return split_per_core(threads, lambda batch: whole.run(None, {input_name: batch}), run_parts)
