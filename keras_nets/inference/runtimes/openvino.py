"""OpenVINO on the model's ONNX export (`pip install keras-nets[openvino]`).

It reads the ONNX export rather than the TensorFlow graph: its TensorFlow frontend, in openvino
2026.4, mistranslates ShuffleNetV2's channel shuffle; the ONNX one does not.
"""

import numpy as np

from keras_nets.inference.runtimes import (
    compile_from_onnx,
    onnx_runtime_installed,
    split_per_core,
    writers_names,
)

NAME = "openvino"
EXTRA = "openvino"
__getattr__ = writers_names(__name__)  # its names from before the warm start kept Keras out


def is_installed():
    return onnx_runtime_installed("openvino")


def compile(model, threads):
    """A batch of one runs as a single request on all cores; a larger batch as parallel
    single-threaded requests ("streams"), one part per core."""
    return compile_from_onnx(compile_onnx, model, threads)


def compile_onnx(onnx_model, threads):
    """`compile` for a model already in ONNX (bytes): a float32 export, or its int8 form."""
    import openvino

    core = openvino.Core()
    network = core.read_model(onnx_model, b"")
    # float32 throughout: on a CPU with bfloat16 instructions (AVX-512 BF16, AMX) OpenVINO
    # otherwise computes in bfloat16 by default (MobileNetV2 differed from Keras by 1.6 on
    # activations of 5, on an Intel Xeon with avx512_bf16; exact on AVX2 or AVX-512 without it).
    exact = {"INFERENCE_PRECISION_HINT": "f32"}
    latency = core.compile_model(
        network, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, **exact}
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
        {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": threads,
            "INFERENCE_NUM_THREADS": threads,
            **exact,
        },
    )
    queue = openvino.AsyncInferQueue(throughput, threads)
    results = {}
    queue.set_callback(lambda done, index: results.__setitem__(index, outputs_of(done)))

    def run_parts(parts):
        for index, part in enumerate(parts):
            queue.start_async([part], index)
        queue.wait_all()
        return [results[index] for index in range(len(parts))]

    return split_per_core(threads, run_whole, run_parts)
