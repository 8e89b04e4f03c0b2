"""On TensorFlow, the ONNX conversion runs in a child process by default, so that its memory (GBs
for the large models) goes when the child ends; KERAS_NETS_ONNX_IN_PROCESS=1 keeps it in the
caller. The rest of the suite sets that variable (conftest.py): these tests unset it.
"""

import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import keras
import pytest
from required_runtimes import require_runtime

from keras_nets import export
from keras_nets.inference import exporting

VARIABLE = exporting.IN_PROCESS_VARIABLE

# In a fresh process (the suite's own has imported tf2onnx long ago): compile_for_inference on a
# small convolution and BatchNormalization, then what this process imported and its children used.
COMPILE_IN_A_FRESH_PROCESS = textwrap.dedent(
    """
    import json, os, resource, sys
    import keras, numpy as np
    import keras_nets
    from published_layout import randomize_weights

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(x)))
    randomize_weights(model)
    images = np.random.default_rng(0).uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images))
    fast = keras_nets.compile_for_inference(model, runtime="onnxruntime")
    scale = float(np.abs(expected).max())
    print(json.dumps({
        "tf2onnx_imported_here": "tf2onnx" in sys.modules,
        "a_child_ran": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss > 0,
        "varies_with_input": float(np.abs(expected - expected[:1]).max()) > 1e-3 * scale,
        "error": float(np.abs(fast.predict(images) - expected).max()) / scale,
        # .ses: importing onnxruntime writes it
        "left_in_temp": sorted(set(os.listdir(os.environ["TMPDIR"])) - {".ses"}),
    }))
    """
)


def test_compile_for_inference_converts_in_a_child_process_leaving_no_temporary_file(tmp_path):
    require_runtime("onnxruntime")
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    result = subprocess.run(
        [sys.executable, "-c", COMPILE_IN_A_FRESH_PROCESS],
        env={**env, "KERAS_BACKEND": "tensorflow", "TMPDIR": str(temp)},
        cwd=os.path.dirname(os.path.dirname(__file__)),  # tests/: its helpers import by name
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "tf2onnx_imported_here": False,
        "a_child_ran": True,
        "varies_with_input": True,
        "error": report["error"],
        "left_in_temp": [],
    }
    assert report["error"] < 1e-4


class Doubler(keras.layers.Layer):
    """A custom layer that is not registered: a child process cannot load it from a .keras file."""

    def call(self, x):
        return x * 2.0


def test_a_failed_child_conversion_is_one_error_line_naming_the_way_out(tmp_path, monkeypatch):
    monkeypatch.delenv(VARIABLE, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the .keras copy goes
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, Doubler()(keras.layers.Conv2D(4, 3)(inputs)), name="custom")

    with pytest.raises(RuntimeError) as error:
        export(model, tmp_path / "custom.onnx")

    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("model='custom': the ONNX conversion on TensorFlow (in a child")
    assert f"{VARIABLE}=1 converts in this process instead" in message
    assert "Doubler" in message  # the child's own last error line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("value, in_child", [(None, True), ("0", True), ("", True), ("1", False)])
def test_the_variable_chooses_where_tensorflow_converts(monkeypatch, value, in_child):
    if value is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, value)
    assert exporting.converts_in_child_process() is in_child


def test_a_bad_value_of_the_variable_is_one_error_line(monkeypatch):
    monkeypatch.setenv(VARIABLE, "yes")
    with pytest.raises(ValueError, match=rf"^{VARIABLE}='yes': expected 1 .* or 0 "):
        exporting.converts_in_child_process()


def test_a_conversion_in_this_process_leaves_nothing_in_reference_cycles(tmp_path):
    """tf2onnx's graphs sit in reference cycles: GBs for a large model (5.2 GB after ResNet50's
    features) until the next full collection. Two workers of the suite each holding that ran CI's
    machine out of memory; the conversion collects them before it returns."""
    require_runtime("onnxruntime")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(
        inputs, keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    )
    gc.collect()
    exporting.write_onnx_in_process(model, str(tmp_path / "model.onnx"))
    assert gc.collect() < 100  # 1,674 objects without the collection


def test_a_conversion_removes_what_killed_conversions_left_and_nothing_else(tmp_path, monkeypatch):
    """SIGKILL runs no cleanup, so a killed conversion's directory (its .keras copy) stays in the
    temporary directory; the next conversion removes ours older than a day, nothing else."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    day_and_a_bit = exporting.STALE_SECONDS + 3600
    entries = {
        "keras-nets-onnx-killed": day_and_a_bit,  # removed
        "keras-nets-int8-killed": day_and_a_bit,  # removed
        "keras-nets-onnx-running": 60,  # another conversion, under way
        "someone-elses-dir": day_and_a_bit,
        "keras-nets-onnx-a-file": day_and_a_bit,  # not a directory
    }
    for name, age in entries.items():
        path = tmp_path / name
        if name.endswith("a-file"):
            path.write_text("not ours to judge")
        else:
            path.mkdir()
            (path / "model.keras").write_text("a copy")
        os.utime(path, (path.stat().st_atime - age, path.stat().st_mtime - age))

    inputs = keras.Input((8, 8, 3))
    export(keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs)), tmp_path / "model.onnx")

    assert (tmp_path / "model.onnx").is_file()
    left = sorted(name for name in os.listdir(tmp_path) if name in entries)
    assert left == ["keras-nets-onnx-a-file", "keras-nets-onnx-running", "someone-elses-dir"]


# An export in a fresh process, to be stopped by a signal while its conversion child runs.
EXPORT_IN_A_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    import keras
    from keras_nets import export

    inputs = keras.Input((8, 8, 3))
    export(keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs)), sys.argv[1])
    """
)


def children_of(pid):
    """The ids of the running processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def is_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the child process through /proc")
def test_a_signal_during_export_ends_the_child_and_leaves_nothing(tmp_path):
    """SIGTERM (`kill`, docker stop, systemd) cleans up as Ctrl-C does: the conversion child is
    ended, not orphaned, and neither the destination nor the temporary directory keeps anything;
    the process then ends by SIGTERM. (SIGINT takes the same path, as KeyboardInterrupt: tried by
    hand with this test, 20 s each, so only SIGTERM runs in CI.)"""
    sent = signal.SIGTERM
    destination, temp = tmp_path / "out", tmp_path / "temp"
    destination.mkdir()
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    process = subprocess.Popen(
        [sys.executable, "-c", EXPORT_IN_A_FRESH_PROCESS, str(destination / "model.onnx")],
        env={**env, "KERAS_BACKEND": "tensorflow", "TMPDIR": str(temp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while not (children := children_of(process.pid)) and process.poll() is None:
            assert time.monotonic() < deadline, "no conversion child started"
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert [p.name for p in destination.iterdir()][0].startswith(".keras-nets-export-")

        process.send_signal(sent)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == -sent, process.stderr.read().decode()[-2000:]
    for _ in range(100):  # an orphan would keep running, adopted by init
        if not any(is_running(child) for child in children):
            break
        time.sleep(0.1)
    assert not any(is_running(child) for child in children), "the conversion child was orphaned"
    assert os.listdir(destination) == []
    assert [name for name in os.listdir(temp) if name.startswith("keras-nets-")] == []
