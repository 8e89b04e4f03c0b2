"""Whether ONNX Runtime's worker threads should stop spinning after a call, measured.

    python benchmarks/onnxruntime_spinning.py                      # MobileNetV2, float32 and int8
    python benchmarks/onnxruntime_spinning.py --models resnet50 --seconds 5

The fast path runs a batch of 1 as one call on every core and a larger batch as one
single-threaded call per core, side by side (`keras_nets.inference.runtimes.split_per_core`).
Prediction over a folder mixes the two (its last batch can be a single image), and so does a
server answering single requests between batches. After a call, ONNX Runtime's worker threads keep
spinning for a while, on the cores the split batch needs next. Three settings of the all-core
session, timed in turns (rounds, medians):
  spinning             ONNX Runtime's default
  no spinning          session.intra_op.allow_spinning = 0: the threads never spin
  spinning stops       session.force_spinning_stop = 1: they spin during a call, stop after it
                       (what keras_nets uses)
Columns: a batch of 1 alone, and "1 + 8": a batch of 1 then a split batch of 8, as images per second.
"""

import argparse
import concurrent.futures
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling modules
from machine import cpu_description

import keras_nets
from keras_nets.inference import quantization
from keras_nets.inference.exporting import onnx_bytes
from keras_nets.inference.folding import fold_batch_norms

SETTINGS = {
    "spinning": {},
    "no spinning": {"session.intra_op.allow_spinning": "0"},
    "spinning stops": {"session.force_spinning_stop": "1"},
}


def session(onnx_model, threads, entries):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    for key, value in entries.items():
        options.add_session_config_entry(key, value)
    return onnxruntime.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])


def images_per_second(step, images_per_step, seconds):
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        done += images_per_step
    return done / (time.perf_counter() - start)


def measure(name, precision, rounds, seconds, threads=2):
    model = keras_nets.create_model(name, weights=None)
    size = model.input_shape[1]
    rng = np.random.default_rng(0)
    onnx_model = onnx_bytes(fold_batch_norms(model))
    if precision == "int8":
        onnx_model = quantization.quantize_onnx(
            onnx_model, rng.uniform(-1, 1, (32, size, size, 3)).astype("float32")
        )
    batch = rng.uniform(-1, 1, (8, size, size, 3)).astype("float32")
    single = session(onnx_model, 1, {})
    name_in = single.get_inputs()[0].name
    pool = concurrent.futures.ThreadPoolExecutor(threads)
    wholes = {
        setting: session(onnx_model, threads, entries) for setting, entries in SETTINGS.items()
    }
    parts = np.array_split(batch, threads)
    results = {setting: ([], []) for setting in SETTINGS}
    for _ in range(rounds):
        for setting, whole in wholes.items():

            def alone():
                whole.run(None, {name_in: batch[:1]})  # noqa: B023 - called in this iteration only

            def mixed():
                alone()
                list(pool.map(lambda part: single.run(None, {name_in: part}), parts))

            results[setting][0].append(images_per_second(alone, 1, seconds))
            results[setting][1].append(images_per_second(mixed, 1 + len(batch), seconds))
    return {
        setting: tuple(statistics.median(v) for v in values) for setting, values in results.items()
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2"])
    parser.add_argument(
        "--precisions", nargs="+", default=["float32", "int8"], choices=["float32", "int8"]
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement (2)")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_description()}\n")
    print("| model | precision | all-core session | batch of 1, img/s | 1 + 8, img/s |")
    print("|---|---|---|---|---|")
    for name in args.models:
        for precision in args.precisions:
            for setting, (alone, mixed) in measure(
                name, precision, args.rounds, args.seconds
            ).items():
                print(
                    f"| {name} | {precision} | {setting} | {alone:.1f} | {mixed:.1f} |", flush=True
                )


if __name__ == "__main__":
    sys.exit(main())
