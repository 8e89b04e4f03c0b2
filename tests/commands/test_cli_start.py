"""How `keras-nets` starts, as a new user meets it: quietly, refusing bad arguments at once.

Each command runs in a child process, as a user runs it: the start-up lines of TensorFlow, absl,
oneDNN and CUDA are written by C++ to descriptor 2, and which backend a refused command imported
is a fact of that process alone.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest
from generated_data import SMALL_RANDOM_MODEL_OPTIONS
from PIL import Image

import keras_nets
from keras_nets.commands import _quiet

pytestmark = pytest.mark.slow_file  # minutes: parallel runs start it first

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
BACKEND_MODULES = ("keras", "tensorflow", "jax", "torch")

# Runs `keras-nets ARGV...` and prints the backend modules it imported, whatever the exit.
CHILD = f"""
import sys
from keras_nets.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exit:
    status = exit.code
print("imported:", *sorted(m for m in {BACKEND_MODULES!r} if m in sys.modules))
sys.exit(status)
"""


def keras_nets_command(*argv, backend="tensorflow", **environment):
    """The finished child process of `keras-nets ARGV...`, with a new user's environment: none of
    the variables that quieten TensorFlow, and the tests' own settings removed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "KERAS_NETS_"))}
    env.update(PYTHONPATH=str(REPOSITORY), KERAS_BACKEND=backend, **environment)
    return subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, argv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.effect_mandelbrot((64, 48), (-2, -1.2, 1, 1.2), 64).convert("RGB").save(path)
    return path


# Lines TensorFlow 2.21 wrote at start-up here, before its own were filtered.
START_UP_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796331639.757478    5518 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1796331639.758476    5518 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.",
    "E0000 00:00:1796331639.758476    5518 cuda_executor.cc:1228] INTERNAL: CUDA error: Failed "
    "call to cudaGetRuntimeVersion: Error loading CUDA libraries.",
    "2026-12-03 21:00:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:210] This "
    "TensorFlow binary is optimized to use available CPU instructions.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.",
]


def test_start_up_lines_are_noise_and_ours_are_not():
    assert all(_quiet.is_noise(line) for line in START_UP_LINES)
    for ours in [
        "keras-nets predict: error: --model nope: expected one of: xception, ...",
        "photo.jpg: no such file or directory",
        "Traceback (most recent call last):",
        "F0000 00:00:1796331639.758476    5518 check.cc:1] Check failed: a crash says why",
    ]:
        assert not _quiet.is_noise(ours), ours


def is_start_up_line(line):
    return _quiet.is_noise(line) or any(
        word in line for word in ("absl::InitializeLog", "oneDNN", "cudart", "CUDA", "cuDNN")
    )


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_a_real_command_starts_quietly_on_every_backend(photo, backend):
    if importlib.util.find_spec(backend) is None:  # CI installs PyTorch after the TensorFlow run
        pytest.skip(f"{backend} is not installed")
    # predict with random weights on a small MobileNetV2: Keras and the backend load, a model is
    # built and run.
    run = keras_nets_command("predict", photo, *SMALL_RANDOM_MODEL_OPTIONS, backend=backend)
    assert run.returncode == 0, run.stderr
    assert str(photo) in run.stdout and "keras" in run.stdout.splitlines()[-1].split()
    assert [line for line in run.stderr.splitlines() if is_start_up_line(line)] == []
    assert run.stderr == ""


def test_verbose_shows_the_start_up_lines(photo):
    # On TensorFlow, whose start-up lines are what the quiet start removes: they are there to see
    # with --verbose (so the test above would see them too, were they not removed).
    run = keras_nets_command("predict", photo, *SMALL_RANDOM_MODEL_OPTIONS, "--verbose")
    assert run.returncode == 0, run.stderr
    assert any(is_start_up_line(line) for line in run.stderr.splitlines()), run.stderr


# Refused before any backend is imported: (argv, the error line).
REFUSED = {
    "unknown model": (
        ["predict", "{photo}", "--model", "resnet"],
        "keras-nets predict: error: --model resnet: expected one of: xception, inception_v3, ",
    ),
    "weights neither imagenet, none nor a file (None is not offered)": (
        ["predict", "{photo}", "--weights", "imagenet21k"],
        "keras-nets predict: error: --weights imagenet21k: expected imagenet, none, or the path",
    ),
    "alpha of a model without one": (
        ["predict", "{photo}", "--model", "resnet50", "--alpha", "0.5"],
        "keras-nets predict: error: --alpha goes with mobilenet_v2, mobilenet, ",
    ),
    "size below the model's smallest": (
        ["explain", "{photo}", "--output", "cams", "--size", "40"],
        "keras-nets explain: error: --size 40: expected at least 71 for xception",
    ),
    "size below the smallest of a model whose family shares its registry entry": (
        ["predict", "{photo}", "--model", "densenet121", "--size", "20"],
        "keras-nets predict: error: --size 20: expected at least 32 for densenet121",
    ),
    "no published weights": (
        ["evaluate", "{folder}", "--model", "shufflenet_v2"],
        "keras-nets evaluate: error: --weights imagenet: no published weights exist for "
        "shufflenet_v2",
    ),
    "crop fraction": (
        ["evaluate", "{folder}", "--crop-pct", "1.5"],
        "keras-nets evaluate: error: argument --crop-pct: '1.5': expected a fraction in [0.5, 1]",
    ),
    "train's model": (
        ["train", "{folder}", "--model", "vgg", "--classes", "2", "--output", "out"],
        "keras-nets train: error: --model vgg: expected one of: ",
    ),
    "an engine without its output": (
        ["predict", "{folder}", "--engine", "spark"],
        "keras-nets predict: error: --engine spark writes to --output OUT.parquet or OUT.jsonl",
    ),
    "an engine's output of no known format": (
        ["predict", "{folder}", "--engine", "dask", "--output", "{folder}/out.csv"],
        "keras-nets predict: error: {folder}/out.csv: expected a name ending in .parquet or .jsonl",
    ),
    "a Spark master for Dask": (
        ["predict", "{folder}", "--engine", "dask", "--master", "local[2]", "--output", "o.jsonl"],
        "keras-nets predict: error: --master goes with --engine spark",
    ),
    "unknown command": (["evalute"], "keras-nets: error: argument COMMAND: invalid choice:"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_argument_is_refused_in_one_line_before_any_backend_is_imported(
    photo, tmp_path, case
):
    argv, line = REFUSED[case]
    argv = [a.format(photo=photo, folder=tmp_path) for a in argv]
    line = line.format(folder=tmp_path)
    run = keras_nets_command(*argv, backend="tensorflow")
    assert run.returncode == 2
    assert run.stdout == "imported:\n"  # none of keras, tensorflow, jax, torch
    assert run.stderr.startswith(line) and run.stderr.count("\n") == 1, run.stderr
    assert "None" not in run.stderr


def test_version_and_the_help_naming_every_command():
    run = keras_nets_command("--version")
    assert (run.returncode, run.stdout.splitlines()[0]) == (
        0,
        f"keras-nets {keras_nets.__version__}",
    )
    run = keras_nets_command("--help")
    described = run.stdout.split("positional arguments")[0]
    for command in ("evaluate", "explain", "predict", "train", "weights"):
        assert command in described


def test_a_child_process_that_outlives_the_command_does_not_hold_it(tmp_path):
    """Spark's JVM, started by `predict --engine spark`, lives until the interpreter exits and
    holds descriptor 2, the quiet start's pipe: the command returns all the same (it hung before),
    and what the child writes later still reaches stderr, filtered."""
    script = """
import subprocess, sys, time
from keras_nets.commands import _quiet
with _quiet.native_stderr_filtered():
    late = "import os, time; time.sleep(5); os.write(2, NOISE + bytes([10]) + b'late' + bytes([10]))"
    late = late.replace("NOISE", repr(b"I0000 00:00:1.2 3 a.cc:1] noise"))
    subprocess.Popen([sys.executable, "-c", late])
    started = time.monotonic()
print(f"{time.monotonic() - started:.1f}")
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert float(run.stdout) < 4  # the filter's wait is bounded (2 s), the child lives 5
    assert run.stderr == "late\n"
