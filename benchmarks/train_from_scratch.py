"""Training from scratch: what `keras-nets train --weights none` reaches on real digits, here.

    python benchmarks/train_from_scratch.py                     # docs/benchmarks.md's three rows
    python benchmarks/train_from_scratch.py --models alexnet --workdir /tmp/scratch

The dataset is scikit-learn's 8x8 digits (1,797 real scans, ten classes), upscaled bicubically to
32 px and written as class folders of PNGs (tests/generated_data.py `write_digits_dataset`): the
first 1,400 scans train, the other 397 validate. Each row runs `keras-nets train` as a user
would, from random weights, in a child process whose output goes to a log file (one plain line
per epoch), and reads the run's history.json. Validation accuracy is that of the best epoch (the
lowest validation loss: best.keras) and of the last; minutes are wall-clock for the whole
command, start-up and tracing included. Prints a Markdown table and the CPU's flags.
"""

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPOSITORY, "tests"))
sys.path.insert(0, HERE)  # its sibling modules
from machine import cpu_description  # noqa: E402

# name -> (size, epochs, extra `keras-nets train` arguments). The learning rate is 3e-3: at the
# default 1e-3, MobileNetV2 reached 77 % in 8 epochs here, 90 % at 3e-3.
RUNS = {
    "mobilenet_v2": (32, 8, ["--alpha", "0.35", "--learning-rate", "0.003"]),
    "shufflenet_v2": (32, 8, ["--learning-rate", "0.003"]),
    "alexnet": (67, 8, []),  # 67 px: the smallest input AlexNet accepts
}


def train(model, data_dir, output, size, epochs, extra):
    """Runs `keras-nets train` on `data_dir`; returns (command, minutes, history)."""
    arguments = [
        "train",
        data_dir,
        "--model",
        model,
        "--size",
        str(size),
        "--classes",
        "10",
        "--weights",
        "none",
        "--epochs",
        str(epochs),
        "--output",
        output,
        "--overwrite",
        *extra,
    ]
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [REPOSITORY, os.environ.get("PYTHONPATH")])),
    }
    start = time.monotonic()
    with open(f"{output}.log", "w") as log:
        subprocess.run(
            [sys.executable, "-m", "keras_nets", *arguments],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    minutes = (time.monotonic() - start) / 60
    with open(os.path.join(output, "history.json")) as f:
        history = json.load(f)
    command = "keras-nets " + shlex.join(arguments[:1] + ["digits/"] + arguments[2:])
    return command.replace(f" --output {output} --overwrite", " --output run/"), minutes, history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--epochs", type=int, default=None, help="instead of each row's own")
    parser.add_argument("--workdir", default=None, help="keep the dataset, logs and runs here")
    args = parser.parse_args(argv)

    from generated_data import write_digits_dataset

    workdir = args.workdir or tempfile.mkdtemp(prefix="train_from_scratch-")
    data_dir = os.path.join(workdir, "digits")
    if not os.path.isdir(data_dir):
        write_digits_dataset(data_dir, size=32)
    print(f"CPU: {cpu_description()}, {os.cpu_count()} cores")
    print(
        "| model | dataset | size | epochs | validation accuracy (best epoch; last) | minutes "
        "| command |"
    )
    print("|---|---|---|---|---|---|---|")
    for model in args.models:
        size, epochs, extra = RUNS[model]
        epochs = args.epochs or epochs
        command, minutes, history = train(
            model, data_dir, os.path.join(workdir, model), size, epochs, extra
        )
        losses = history["val_loss"]
        best = min(
            range(len(losses)), key=lambda i: losses[i] if math.isfinite(losses[i]) else math.inf
        )
        accuracy = history["val_accuracy"]
        print(
            f"| {model} | digits 1,400 / 397 | {size} | {epochs} | {accuracy[best]:.1%} "
            f"(epoch {best + 1}); {accuracy[-1]:.1%} | {minutes:.1f} | `{command}` |",
            flush=True,
        )


if __name__ == "__main__":
    main()
