"""One process, Spark local[N] and a Dask cluster of N workers, predicting the same folder on one
machine: what each engine costs to start and what it gives once running.

    python benchmarks/batch_engines.py                  # docs/benchmarks.md's engine table
    python benchmarks/batch_engines.py --files 64 --fast

Each engine runs as a user runs it, in a fresh process: `keras-nets predict FOLDER --output OUT`
with `--engine local` (one process: decoding threads and the model), `spark` (local mode, one
task slot per core) or `dask` (a LocalCluster of one single-threaded worker per core), twice: on a
folder of one photo, whose time is the start-up (interpreter, engine, workers, model loaded in
each), and on a folder of `--files` photos. The steady rate is (files - 1) / (time for files -
time for one): start-up kept apart. Photos are 640x480 JPEGs made from the sample photo shipped
with keras-nets (benchmarks/folder_bound.py); the model reads random weights from a `.h5` file
(the published files cannot be downloaded here, and an engine refuses random weights drawn per
worker). With `--fast`, one run before the rows converts the model into the compiled-model cache
of `$KERAS_HOME`, which every engine's workers on this machine then start from (the warm start).
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling modules
from folder_bound import write_photos
from machine import cpu_description, markdown_table

ENGINES = {"local": "results.jsonl", "spark": "results.parquet", "dask": "results.parquet"}


def main(argv=None):
    args = parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        weights = weights_file(args.model, scratch)
        one = write_photos(os.path.join(scratch, "one"), 1, 640, 480)
        many = write_photos(os.path.join(scratch, "many"), args.files, 640, 480)
        if args.fast:  # the conversion, once: every row then starts from the compiled-model cache
            run("local", one, weights, args, scratch)
        for engine in args.engines:
            start_up = run(engine, one, weights, args, scratch)
            total = run(engine, many, weights, args, scratch)
            rows.append((engine, start_up, total, (args.files - 1) / (total - start_up)))
    print(table(args, rows))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--files", type=int, default=400, help="photos in the folder (400)")
    parser.add_argument("--fast", action="store_true", help="predict --fast (ONNX Runtime)")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    return parser.parse_args(argv)


def weights_file(model, scratch):
    """A .h5 of `model`'s random weights: a file every worker loads the same values from."""
    import keras_nets

    path = os.path.join(scratch, f"{model}.weights.h5")
    keras_nets.create_model(model, weights=None).save_weights(path)
    return path


def run(engine, folder, weights, args, scratch):
    """Seconds for `keras-nets predict folder --engine engine --output ...` in a fresh process."""
    output = os.path.join(scratch, f"{engine}-{ENGINES[engine]}")
    command = [sys.executable, "-m", "keras_nets", "predict", folder, "--model", args.model]
    command += ["--weights", weights, "--engine", engine, "--output", output, "--overwrite"]
    command += ["--fast"] if args.fast else []
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def versions():
    import dask
    import keras
    import pyspark

    return (
        f"Python {platform.python_version()}, Keras {keras.__version__} "
        f"({keras.backend.backend()}), Spark {pyspark.__version__}, Dask {dask.__version__}"
    )


def table(args, rows):
    cores = os.cpu_count()
    lines = [
        f"{args.model} 224 px (random weights from a .h5), "
        f"{'fast path (ONNX Runtime)' if args.fast else 'Keras'}, {args.files} JPEGs of 640x480, "
        f"{cores} CPU(s): {cpu_description()}; {platform.system()} {platform.machine()}, "
        f"{versions()}",
        "",
    ]
    header = ["engine", "start-up s (1 photo)", f"{args.files} photos s", "steady img/s"]
    header.append("steady vs one process")
    local = next((rate for engine, *_, rate in rows if engine == "local"), None)
    cells = []
    for engine, start_up, total, rate in rows:
        versus = f"{rate / local:.2f}x" if local else "-"
        cells.append([engine, f"{start_up:.1f}", f"{total:.1f}", f"{rate:.1f}", versus])
    return "\n".join(lines) + "\n" + markdown_table(header, cells)


if __name__ == "__main__":
    main()
