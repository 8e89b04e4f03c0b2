"""keras_nets.export: each format reloads in its own runtime and gives the Keras model's outputs;
an existing path is replaced only when it holds an earlier export of the same format."""

import os
import re
import warnings

import keras
import pytest
import tensorflow as tf
from informative_weights import CALIBRATION_IMAGES, assert_informative, calibrate_batch_norm
from informative_weights import random_images as photo_like_images
from published_layout import assert_same_outputs, random_images, randomize_weights
from required_runtimes import require_runtime

from keras_nets import create_model, export
from keras_nets.inference import exporting


@pytest.fixture(scope="module")
def model():
    """MobileNetV2 features at 32x32: every convolution kind, folded, in a fast graph; BatchNorm
    statistics calibrated so that the features vary with the input."""
    model = create_model(
        "mobilenet_v2", weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.35
    )
    randomize_weights(model)
    calibrate_batch_norm(model, photo_like_images(CALIBRATION_IMAGES, 32, seed=100) / 127.5 - 1)
    return model


@pytest.fixture
def tiny_model():
    """A convolution and its BatchNormalization: enough for what does not depend on the network."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, x)
    randomize_weights(model)
    return model


def tflite_interpreter(path):
    """LiteRT's interpreter where ai_edge_litert is installed; TensorFlow's (deprecated) otherwise."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return Interpreter(model_path=path)


def run_onnx(path, images):
    require_runtime("onnxruntime")
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def run_tflite(path, images):
    interpreter = tflite_interpreter(path)
    (signature,) = interpreter.get_signature_list().values()
    runner = interpreter.get_signature_runner()
    (input_name,) = signature["inputs"]
    (output,) = runner(**{input_name: images}).values()
    return output


def run_saved_model(path, images):
    loaded = tf.saved_model.load(path)  # kept alive while serve runs: it owns the variables
    return loaded.serve(images).numpy()


RUNTIMES = {"onnx": run_onnx, "tflite": run_tflite, "saved_model": run_saved_model}
SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite", "saved_model": ""}


@pytest.mark.parametrize("format", sorted(RUNTIMES))
def test_export_reloads_with_the_keras_outputs_at_any_batch_size(model, tmp_path, format):
    if format == "onnx":
        require_runtime("onnxruntime")
    path = str(tmp_path / f"mobilenet_v2{SUFFIXES[format]}")

    assert export(model, path, format=format) == path

    assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)], "temporary files left behind"
    for count in (1, 3):
        images = photo_like_images(count, 32, seed=count) / 127.5 - 1
        expected = model(images, training=False)
        assert_same_outputs(RUNTIMES[format](path, images), expected, 1e-4)
    assert_informative(expected, "mobilenet_v2 features")


def test_format_defaults_from_the_file_suffix(tiny_model, tmp_path):
    path = tmp_path / "model.tflite"
    export(tiny_model, path)
    images = random_images((2, 8, 8, 3))
    assert_same_outputs(run_tflite(str(path), images), tiny_model(images, training=False), 1e-4)


# --- What is there already: replaced only when it is an earlier export of the same format --------


def tree(root):
    """Everything under `root`, without following links: {relative path: what it is / holds}."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            if os.path.islink(path):
                found[relative] = f"link to {os.readlink(path)}"
                dirs[:] = [d for d in dirs if d != name]
            elif os.path.isdir(path):
                found[relative] = "directory"
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    found[relative] = f.read()
            else:
                found[relative] = "special file"
    return found


def onnx_file(path):
    """A small valid ONNX model (one Relu), as an earlier ONNX export would be."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "earlier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), str(path))


def tflite_file(path):
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(24))  # a flatbuffer's header, TFLite's id


def foreign_saved_model_dir(path):
    """A SavedModel that keras-nets did not write (no keras_nets_export.json)."""
    path.mkdir()
    (path / "saved_model.pb").write_bytes(b"an earlier SavedModel")
    (path / "variables").mkdir()
    (path / "variables" / "stale.index").write_bytes(b"from the earlier export")


def saved_model_dir(path):
    """An earlier SavedModel export of keras-nets: its keras_nets_export.json lists its files."""
    foreign_saved_model_dir(path)
    exporting._write_export_record(str(path), "saved_model")


def users_folder_with_an_empty_saved_model_pb(path):
    notes_dir(path)
    (path / "saved_model.pb").write_bytes(b"")


def export_with_the_users_file_added(path):
    saved_model_dir(path)
    (path / "notes.txt").write_text("the user's own work")


def export_with_an_unreadable_folder_added(path):
    saved_model_dir(path)
    (path / "private").mkdir(mode=0o000)  # what it holds cannot be known


def export_with_a_link_added(path):
    saved_model_dir(path)
    (path / "variables" / "elsewhere").symlink_to(path.parent / "notes.txt")


def notes_dir(path):
    path.mkdir()
    (path / "notes.txt").write_text("the user's own work")


def text_file(path):
    path.write_text("the user's own work")


def fifo(path):
    os.mkfifo(path)  # opening it to read would block forever


def link_to_onnx(path):
    onnx_file(path.parent / "real.onnx")
    path.symlink_to("real.onnx")


# (case, what is at the path beforehand, the path from the current directory, format, message).
# The current directory is `work`, holding the user's notes.txt ("..": from work/sub).
REFUSED = [
    ("empty path", None, "", None, r"path='': expected the name of a file or directory"),
    ("current directory", None, ".", None, r"path='\.' is the current directory"),
    (
        "directory holding the current one",
        None,
        "..",
        "saved_model",
        r"path='\.\.' is a directory holding the current one",
    ),
    (
        "directory, not a SavedModel",
        notes_dir,
        "mine",
        None,
        r"path='mine' is a directory that keras-nets did not export \(it has no saved_model.pb\)",
    ),
    (
        "a folder with an empty saved_model.pb",
        users_folder_with_an_empty_saved_model_pb,
        "mine",
        None,
        r"path='mine' is a directory that keras-nets did not export \(it has no keras_nets_export.json\).*overwrite=True replaces it",
    ),
    (
        "a SavedModel from elsewhere",
        foreign_saved_model_dir,
        "mine",
        None,
        r"did not export \(it has no keras_nets_export.json\)",
    ),
    (
        "an export holding the user's file",
        export_with_the_users_file_added,
        "mine",
        None,
        r"path='mine' is a directory holding files the export did not write \(notes.txt\)",
    ),
    (
        "an export holding a link",
        export_with_a_link_added,
        "mine",
        None,
        r"holding a symbolic link or special file",
    ),
    (
        "an export holding an unreadable folder",
        export_with_an_unreadable_folder_added,
        "mine",
        None,
        r"holding files the export did not write \(private\)|cannot be read entirely",
    ),
    ("current directory, overwrite", None, ".", "overwrite", r"path='\.' is the current directory"),
    ("name too long", None, "x" * 300 + ".onnx", None, r"path='x{300}\.onnx': File name too long"),
    (
        "directory named .onnx",
        notes_dir,
        "mine.onnx",
        None,
        r"path='mine.onnx' is a directory: expected a new path, or an ONNX model exported earlier",
    ),
    (
        "file where a SavedModel goes",
        text_file,
        "mine",
        "saved_model",
        r"path='mine' is a file: expected a new path, or a SavedModel exported earlier",
    ),
    (
        "text file named .onnx",
        text_file,
        "mine.onnx",
        None,
        r"path='mine.onnx' is a file that is not an ONNX model",
    ),
    (
        "text file named .tflite",
        text_file,
        "mine.tflite",
        None,
        r"path='mine.tflite' is a file that is not a TFLite model",
    ),
    (
        "onnx file where tflite goes",
        onnx_file,
        "mine.tflite",
        "tflite",
        r"is a file that is not a TFLite model",
    ),
    (
        "SavedModel where onnx goes",
        saved_model_dir,
        "mine",
        "onnx",
        r"path='mine' is a directory: expected a new path, or an ONNX model exported earlier",
    ),
    (
        "fifo",
        fifo,
        "mine.onnx",
        None,
        r"path='mine.onnx' is a special file \(FIFO, socket or device\)",
    ),
    (
        "link to an onnx export",
        link_to_onnx,
        "mine.onnx",
        None,
        r"path='mine.onnx' is a symbolic link",
    ),
    (
        "missing directory",
        None,
        "missing/mine.onnx",
        None,
        r"path='missing/mine.onnx': the directory .*missing does not exist",
    ),
    (
        "unknown format",
        text_file,
        "mine.pb",
        "pb",
        r"format='pb': expected one of 'onnx', 'tflite', 'saved_model'",
    ),
]


@pytest.mark.parametrize(
    "existing, path, format, message",
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_refuses_a_path_that_is_not_an_earlier_export_touching_nothing(
    tiny_model, tmp_path, monkeypatch, existing, path, format, message
):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "notes.txt").write_text("the user's own work")
    if existing is not None:
        existing(work / path)
    monkeypatch.chdir(work / "sub" if path == ".." else work)
    before = tree(tmp_path)
    overwrite = format == "overwrite"

    with pytest.raises(ValueError, match=message):
        export(tiny_model, path, format=None if overwrite else format, overwrite=overwrite)

    assert tree(tmp_path) == before


class Subclassed(keras.Model):
    def call(self, x):
        return x


@pytest.mark.parametrize(
    "not_a_model, message",
    [
        ("mobilenet_v2", r"model='mobilenet_v2': expected a keras.Model"),
        (
            Subclassed(name="mine"),
            r"model='mine' is a subclassed Subclassed: expected a Functional",
        ),
    ],
    ids=["string", "subclassed"],
)
def test_refuses_what_is_not_a_model_with_a_graph_touching_nothing(tmp_path, not_a_model, message):
    with pytest.raises(ValueError, match=message):
        export(not_a_model, tmp_path / "model.tflite")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "earlier, name, run",
    [
        (saved_model_dir, "served", run_saved_model),
        (onnx_file, "model.onnx", run_onnx),
        (tflite_file, "model.tflite", run_tflite),
    ],
    ids=["saved_model", "onnx", "tflite"],
)
def test_an_earlier_export_of_the_same_format_is_replaced(tiny_model, tmp_path, earlier, name, run):
    target = tmp_path / name
    earlier(target)

    export(tiny_model, target)

    assert os.listdir(tmp_path) == [name], "temporary files left behind"
    if target.is_dir():
        assert not (target / "variables" / "stale.index").exists()
        assert exporting._not_exported(str(target), "saved_model") is None  # replaceable again
        export(tiny_model, target)
    images = random_images((2, 8, 8, 3))
    assert_same_outputs(run(str(target), images), tiny_model(images, training=False), 1e-4)


def test_overwrite_replaces_what_export_would_refuse(tiny_model, tmp_path):
    target = tmp_path / "mine"
    users_folder_with_an_empty_saved_model_pb(target)
    export(tiny_model, target, format="saved_model", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["mine"]
    assert not (target / "notes.txt").exists()
    images = random_images((2, 8, 8, 3))
    assert_same_outputs(
        run_saved_model(str(target), images), tiny_model(images, training=False), 1e-4
    )


def test_a_read_only_directory_is_one_error_line_before_any_work(tiny_model, tmp_path, monkeypatch):
    if os.geteuid() == 0:  # root writes anywhere: stand in a refusing os.access
        monkeypatch.setattr(os, "access", lambda path, mode: False)
    else:
        tmp_path.chmod(0o555)
    try:
        with pytest.raises(
            ValueError, match=rf"path='.*model\.onnx': the directory {tmp_path} is not writable$"
        ):
            export(tiny_model, tmp_path / "model.onnx")
    finally:
        tmp_path.chmod(0o755)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "earlier, name, writer",
    [
        (saved_model_dir, "served", "write_saved_model"),
        (tflite_file, "model.tflite", "write_tflite"),
    ],
    ids=["saved_model", "tflite"],
)
@pytest.mark.parametrize(
    "failure",
    [RuntimeError("the converter crashed"), OSError(28, "No space left on device")],
    ids=["crash", "disk full"],
)
def test_a_failed_export_leaves_nothing_behind_and_keeps_the_earlier_one(
    tiny_model, tmp_path, monkeypatch, earlier, name, writer, failure
):
    def write_half_then_fail(model, path):
        if writer == "write_saved_model":
            os.makedirs(path)
            path = os.path.join(path, "saved_model.pb")
        with open(path, "wb") as f:
            f.write(b"half")
        raise failure

    monkeypatch.setattr(exporting, writer, write_half_then_fail)
    earlier(tmp_path / name)
    before = tree(tmp_path)

    with pytest.raises(type(failure), match=re.escape(str(failure))):
        export(tiny_model, tmp_path / name)

    assert tree(tmp_path) == before
