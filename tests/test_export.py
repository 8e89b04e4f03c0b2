"""keras_nets.export: each format reloads in its own runtime and gives the Keras model's outputs."""

import os
import warnings

import keras
import pytest
import tensorflow as tf

from keras_nets import create_model, export, inference
from published_layout import assert_same_outputs, random_images, randomize_weights


@pytest.fixture(scope="module")
def model():
    """MobileNetV2 features at 32x32: every convolution kind, folded, in a fast graph."""
    model = create_model("mobilenet_v2", weights=None, include_top=False, input_shape=(32, 32, 3))
    randomize_weights(model)
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
    onnxruntime = pytest.importorskip("onnxruntime")
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
    if format == "onnx" and "onnxruntime" not in inference.available_backends():
        pytest.skip("the onnx extra (tf2onnx, onnx, onnxruntime) is not installed")
    path = str(tmp_path / f"mobilenet_v2{SUFFIXES[format]}")

    assert export(model, path, format=format) == path

    assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)], "temporary files left behind"
    for count in (1, 3):
        images = random_images((count, 32, 32, 3), seed=count)
        expected = model(images, training=False)
        assert_same_outputs(RUNTIMES[format](path, images), expected, 1e-4)


def test_format_defaults_from_the_file_suffix(tiny_model, tmp_path):
    path = tmp_path / "model.tflite"
    export(tiny_model, path)
    images = random_images((2, 8, 8, 3))
    assert_same_outputs(run_tflite(str(path), images), tiny_model(images, training=False), 1e-4)


def test_rejects_an_unknown_format_listing_the_valid_ones(tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"format='pb'.*'onnx', 'tflite', 'saved_model'"):
        export(tiny_model, tmp_path / "model.pb", format="pb")
    assert os.listdir(tmp_path) == []


def test_rejects_a_path_in_a_missing_directory(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        export(tiny_model, tmp_path / "missing" / "model.tflite")


@pytest.mark.parametrize("existing", ["file", "directory"])
def test_a_failed_export_leaves_nothing_behind_and_keeps_the_old_one(
    tiny_model, tmp_path, monkeypatch, existing
):
    def write_half_then_fail(model, path):
        os.makedirs(path)
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        raise RuntimeError("the converter crashed")

    monkeypatch.setattr(inference, "_write_saved_model", write_half_then_fail)
    target = tmp_path / "model"
    if existing == "file":
        target.write_bytes(b"old export")
    else:
        target.mkdir()
        (target / "saved_model.pb").write_bytes(b"old export")

    with pytest.raises(RuntimeError, match="crashed"):
        export(tiny_model, target, format="saved_model")

    assert os.listdir(tmp_path) == ["model"]
    old = target if existing == "file" else target / "saved_model.pb"
    assert old.read_bytes() == b"old export"


def test_a_new_export_replaces_an_old_directory(tiny_model, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("from an older export")

    export(tiny_model, target, format="saved_model")

    assert "stale.txt" not in os.listdir(target)
    assert os.listdir(tmp_path) == ["model"]
    images = random_images((2, 8, 8, 3))
    assert_same_outputs(run_saved_model(str(target), images), tiny_model(images, training=False), 1e-4)
