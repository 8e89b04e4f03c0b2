"""`keras-nets train` under misuse and interruption: nothing lost, nothing half-written, no traceback.

The rows of each table are cases. The interruption tests send a real SIGINT to a real
`keras-nets train` process, paused at a chosen moment through the test-only hook
`training.PAUSE_FOR_TESTS`, and then check the output folder holds a consistent run.

What is tested is what the command does around the network (its checks, its files, its signals),
so the runs train a registered tiny network (tests/generated_data.py), as a user's own module
would register one: a second per run where MobileNetV2 took half a minute.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from generated_data import SMALL_MODEL, make_dataset, registered_tiny_network

from keras_nets import finetune, safe_files, training
from keras_nets.cli import main

pytestmark = pytest.mark.slow_file  # minutes: parallel runs start it first

EARLIER_CLASSES = ["x", "y", "z"]  # an earlier run: three classes, the new one has two
TINY_MODEL = "tiny_train_misuse"  # registered by the `tiny_network` fixture, 32x32 inputs
TINY_SIZE = 32
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `python -m keras_nets` (keras_nets/__main__.py, run by runpy as -m runs it) in a child process
# that first registers the tiny network, as a user's module imported at start-up would.
TRAIN_IN_CHILD = (
    f"import runpy, sys; sys.path.insert(0, {TESTS!r}); import generated_data; "
    f"next(generated_data.registered_tiny_network({TINY_MODEL!r}, preprocessing='tf')); "
    "runpy.run_module('keras_nets', run_name='__main__', alter_sys=True)"
)


@pytest.fixture(scope="module", autouse=True)
def tiny_network():
    yield from registered_tiny_network(TINY_MODEL, preprocessing="tf")


def train_argv(data_dir, output, *extra):
    return [
        "train",
        str(data_dir),
        "--model",
        TINY_MODEL,
        "--size",
        str(TINY_SIZE),
        "--classes",
        "2",
        "--batch",
        "4",
        "--weights",
        "none",
        "--epochs",
        "1",
        "--output",
        str(output),
        *map(str, extra),
    ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "colours", train=2, validation=2, size=8)


def write_earlier_run(output):
    """A complete run of another dataset (three classes), as an earlier `keras-nets train` left it."""
    output.mkdir(parents=True, exist_ok=True)
    model = finetune.build_classifier(TINY_MODEL, 3, image_size=TINY_SIZE, weights=None)
    model.save(output / "model.keras")
    model.save(output / "best.keras")
    (output / "class_names.json").write_text(json.dumps(EARLIER_CLASSES))
    (output / "history.json").write_text(json.dumps({"loss": [1.0]}))
    return {name: (output / name).read_bytes() for name in training.RUN_FILES}


def assert_consistent_run(output):
    """Each .keras in `output` loads and predicts the classes of the class_names.json beside it;
    no partial file is left."""
    names = sorted(os.listdir(output))
    assert not [n for n in names if ".partial-" in n], names
    models = [n for n in names if n.endswith(".keras")]
    if models:
        class_names = json.loads((output / "class_names.json").read_text())
    for name in models:
        model = keras.saving.load_model(output / name, compile=False)
        assert model.output_shape == (None, len(class_names)), (name, class_names)
    return names


# --- refused before anything is written ---------------------------------------------------------


def file_named_output(tmp_path):
    (tmp_path / "out").write_text("my notes")
    return {"out": "my notes"}


@pytest.mark.parametrize(
    "make_output, extra, message",
    [
        (file_named_output, (), "--output {out}: not a directory (a file of that name exists)"),
        (
            lambda tmp: write_earlier_run(tmp / "out"),
            (),
            "--output {out} holds an earlier run (model.keras, best.keras, history.json, "
            "class_names.json): choose another folder, or overwrite it (--overwrite)",
        ),
    ],
    ids=["output is a file", "output holds a run"],
)
def test_an_output_that_would_lose_something_is_refused(
    capsys, tmp_path, dataset, make_output, extra, message
):
    before = make_output(tmp_path)
    output = tmp_path / "out"
    status = main(train_argv(dataset, output, *extra))
    err = capsys.readouterr().err
    assert status == 2
    assert err == f"keras-nets train: error: {message.format(out=output)}\n"
    if output.is_file():
        assert output.read_text() == before["out"]
    else:
        assert {name: (output / name).read_bytes() for name in training.RUN_FILES} == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--learning-rate", "nan"],
            "argument --learning-rate: 'nan': expected a finite number above 0",
        ),
        (
            ["--learning-rate", "inf"],
            "argument --learning-rate: 'inf': expected a finite number above 0",
        ),
        (
            ["--learning-rate", "0"],
            "argument --learning-rate: '0': expected a finite number above 0",
        ),
        (
            ["--learning-rate", "-0.001"],
            "argument --learning-rate: '-0.001': expected a finite number",
        ),
        (["--size", "100000"], "argument --size: '100000': expected at most 2048"),
        (["--epochs", "0"], "argument --epochs: '0': expected a positive integer"),
    ],
)
def test_bad_numbers_are_usage_errors(capsys, tmp_path, dataset, argv, message):
    with pytest.raises(SystemExit) as exit:
        main(train_argv(dataset, tmp_path / "out", *argv))
    assert exit.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "learning_rate, accepted",
    [
        (1e-3, True),
        (np.float32(1e-3), True),
        (np.int64(1), True),
        (1, True),
        (float("nan"), False),
        (float("inf"), False),
        (0.0, False),
        (-1e-3, False),
        (True, False),
        ("0.001", False),
    ],
)
def test_learning_rate_must_be_a_finite_positive_number(learning_rate, accepted):
    if accepted:
        finetune.check_learning_rate(learning_rate)
    else:
        with pytest.raises(ValueError, match=r"learning_rate=.*: expected a finite number above 0"):
            finetune.check_learning_rate(learning_rate)


def test_the_python_api_checks_the_learning_rate_before_anything(tmp_path, dataset):
    with pytest.raises(ValueError, match="learning_rate=nan"):
        training.train_classifier(
            dataset, tmp_path / "out", base=SMALL_MODEL, classes=2, learning_rate=float("nan")
        )
    assert not (tmp_path / "out").exists()


def test_an_image_size_too_large_for_memory_is_refused_up_front(tmp_path, dataset):
    with pytest.raises(ValueError, match="image_size=100000: expected at most 2048"):
        training.train_classifier(
            dataset, tmp_path / "out", base=SMALL_MODEL, classes=2, image_size=100000
        )


# --- the dataset: special and hidden files are checked like the others --------------------------


@pytest.mark.parametrize(
    "name, make, problem",
    [
        ("pipe.png", os.mkfifo, "not a regular file (a FIFO); not opened"),
        (".hidden.png", lambda p: open(p, "w").write("not a PNG"), None),  # Keras reads it too
    ],
    ids=["fifo", "hidden broken file"],
)
def test_files_training_would_choke_on_are_listed_before_training(
    capsys, tmp_path, name, make, problem
):
    data = make_dataset(tmp_path / "data", train=2, validation=1, size=8)
    path = data / "train" / "red" / name
    make(path)
    status = main(train_argv(data, tmp_path / "out"))
    err = capsys.readouterr().err
    assert status == 2 and "1 image(s) cannot be decoded" in err
    assert f"  {path}: {problem or ''}" in err
    assert not (tmp_path / "out").exists()


def test_hidden_class_folders_are_ignored_as_keras_does(capsys, tmp_path):
    data = make_dataset(tmp_path / "data", train=2, validation=1, size=8)
    (data / "train" / ".ipynb_checkpoints").mkdir()
    assert training.check_dataset(data, 2) == ["blue", "red"]


# --- Ctrl-C at any moment leaves the earlier run or a consistent new one -------------------------


# (moment the run is paused at, whether an earlier run is overwritten, the signal, files left)
INTERRUPTIONS = [
    # --overwrite over an earlier run: its files go (models first), the new labels come...
    ("before-fit", True, "SIGINT", ["class_names.json"]),
    # ...the first best.keras is being written, under a temporary name, when Ctrl-C comes...
    ("best-save", True, "SIGINT", ["class_names.json"]),
    # ...or SIGTERM (kill, docker stop): the same cleanup...
    ("best-save", True, "SIGTERM", ["class_names.json"]),
    # ...and the final model.keras too: best.keras is complete, with its labels.
    ("final-save", False, "SIGTERM", ["best.keras", "class_names.json"]),
]
# What `keras-nets train` ends with on each signal: the shell's status and one line.
ENDINGS = {"SIGINT": (130, "interrupted"), "SIGTERM": (143, "terminated")}


def as_from_a_terminal():
    """In the child, before it starts: SIGINT and SIGTERM act as they do on a command typed in a
    terminal, whatever this test process inherited or an earlier test left. A process ignoring
    SIGINT or blocking it passes that on to its children, and in CI's TensorFlow run (xdist
    worker, after other test files) both SIGINT runs slept through their signal, where alone
    they stop at once."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


@pytest.fixture(scope="module")
def interrupted_runs(tmp_path_factory, dataset, tiny_network):
    """{(moment, signal): (output, exit status, stderr)}: one `keras-nets train` process per row
    of INTERRUPTIONS, run side by side, each sent its signal once paused at its moment."""
    runs = {}
    for point, earlier_run, signal_name, _ in INTERRUPTIONS:
        output = tmp_path_factory.mktemp(f"{point}-{signal_name}") / "out"
        if earlier_run:
            write_earlier_run(output)
        marker = output.parent / "paused"
        env = {
            **os.environ,
            training.PAUSE_FOR_TESTS: f"{point}:{marker}",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        extra = ["--overwrite"] if earlier_run else []
        command = [sys.executable, "-c", TRAIN_IN_CHILD, *train_argv(dataset, output, *extra)]
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=as_from_a_terminal,
        )
        runs[point, signal_name] = (output, marker, process)
    results, signalled = {}, set()
    deadline = time.monotonic() + 600  # generous: on CI's 2 busy cores, setup took 144 s once
    try:
        while len(results) < len(runs):
            for run, (output, marker, process) in runs.items():
                if run in results:
                    continue
                # Signal each run as soon as it pauses, never after waiting on another.
                if run not in signalled and marker.exists() and process.poll() is None:
                    process.send_signal(getattr(signal, run[1]))
                    signalled.add(run)
                if process.poll() is not None:
                    _, err = process.communicate()
                    results[run] = (output, process.returncode, err)
            assert time.monotonic() < deadline, (
                f"runs never paused or never ended: {set(runs) - set(results)}"
            )
            time.sleep(0.2)
    finally:  # a run left paused would sleep on for 15 minutes
        for _, _, process in runs.values():
            if process.poll() is None:
                process.kill()
    return results


@pytest.mark.parametrize("point, earlier_run, signal_name, left", INTERRUPTIONS)
def test_ctrl_c_or_sigterm_leaves_a_consistent_run(
    interrupted_runs, point, earlier_run, signal_name, left
):
    output, status, err = interrupted_runs[point, signal_name]
    expected_status, last_line = ENDINGS[signal_name]
    assert status == expected_status and err.strip().endswith(last_line), err
    assert "Traceback" not in err
    assert assert_consistent_run(output) == left
    assert json.loads((output / "class_names.json").read_text()) == ["blue", "red"]


# --- One run at a time in an output folder; what a killed run left is cleaned -----------------


def test_a_second_run_into_a_locked_output_is_refused_in_one_line(capsys, tmp_path, dataset):
    """Two runs started together into one --output: the second finds the folder locked."""
    output = tmp_path / "out"
    output.mkdir()
    with safe_files.locked(output, "output"):  # the first run, writing
        status = main(train_argv(dataset, output))
        err = capsys.readouterr().err
        assert os.listdir(output) == [safe_files.LOCK_FILE]  # nothing of the second run
    assert status == 2
    assert err == (
        f"keras-nets train: error: --output {output}: another keras-nets run is writing to it "
        f"(it holds {safe_files.LOCK_FILE}); wait for it to finish, or choose another folder\n"
    )
    assert os.listdir(output) == []  # the lock goes with its holder


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(capsys, tmp_path, dataset):
    """SIGKILL cannot be caught: its .partial- files are removed by the next run (only those of
    the run's own files: a file of the user's with a similar name stays)."""
    output = tmp_path / "out"
    write_earlier_run(output)
    left_behind = [".best.partial-4321.keras", ".model.partial-99.keras", ".history.partial-7.json"]
    users = [".notes.partial-1.txt", "best.partial-2.keras"]
    for name in left_behind + users:
        (output / name).write_bytes(b"half")
    status = main(train_argv(dataset, output, "--overwrite"))
    assert status == 0, capsys.readouterr().err
    names = assert_consistent_run_with(output, users)
    assert names == sorted([*training.RUN_FILES, *users])


def assert_consistent_run_with(output, users):
    for name in users:
        os.rename(output / name, output.parent / name)  # set aside: checked as the user's
    names = assert_consistent_run(output)
    for name in users:
        os.rename(output.parent / name, output / name)
    return sorted([*names, *users])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
def test_a_save_that_fails_on_the_disk_is_one_line_and_leaves_a_consistent_run(
    capsys, tmp_path, dataset, monkeypatch, code
):
    """The disk fills (or turns read-only) while best.keras is written: one error line naming the
    file, no temporary file left, the labels still beside whatever models are there."""

    def failing_save(model, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a model")
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(keras.Model, "save", failing_save)
    output = tmp_path / "out"
    status = main(train_argv(dataset, output))
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"keras-nets train: error: [Errno {code}] {os.strerror(code)}: ")
    assert str(output / ".best.partial-") in err
    assert assert_consistent_run(output) == ["class_names.json"]


def test_a_run_whose_loss_becomes_nan_is_an_error_and_saves_no_nan_model(
    capsys, tmp_path, dataset, monkeypatch
):
    """Weights that turned NaN (here: the head's bias, from the start) make the loss NaN: the run
    stops, says so in one line and writes no model.keras (it would predict NaN everywhere)."""
    build = finetune.classifier_to_train

    def nan_head(*args, **kwargs):
        model = build(*args, **kwargs)
        head = model.get_layer("predictions")
        kernel, bias = head.get_weights()
        head.set_weights([kernel, np.full_like(bias, np.nan)])
        return model

    monkeypatch.setattr(finetune, "classifier_to_train", nan_head)
    output = tmp_path / "out"
    status = main(train_argv(dataset, output, "--epochs", "3"))
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("keras-nets train: error: training diverged: the loss is nan at epoch 1")
    assert err.count("\n") == 1
    assert err.rstrip().endswith("a smaller learning rate usually avoids this")
    assert assert_consistent_run(output) == ["class_names.json"]
