"""The compiled-model cache: a converted model is reused only when everything it depends on is
the same, a damaged entry is rebuilt, and `keras-nets predict --fast` answers a repeated request
without Keras, TensorFlow, JAX or PyTorch (keras_nets.inference.cache, keras_nets.prediction.cached).

Each test has its own empty $KERAS_HOME (tests/conftest.py), so the cache starts empty.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from informative_weights import assert_informative
from informative_weights import random_images as photo_like_images
from keras import layers
from PIL import Image
from required_runtimes import require_runtime

from keras_nets import compile_for_inference, create_model
from keras_nets.cli import main as keras_nets_main
from keras_nets.inference import cache, compiled
from keras_nets.prediction import cached

pytestmark = pytest.mark.usefixtures("onnx_runtime")


@pytest.fixture
def onnx_runtime():
    require_runtime("onnxruntime")


@pytest.fixture
def conversions(monkeypatch):
    """The number of ONNX conversions so far: a cache hit converts nothing."""
    count = [0]
    convert = compiled.onnx_bytes

    def counted(model):
        count[0] += 1
        return convert(model)

    monkeypatch.setattr(compiled, "onnx_bytes", counted)
    return count


def small_network(units=6, seed=0):
    """A convolution, its BatchNormalization (folded) and a softmax: outputs that vary with the
    input, converted in a second."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(units, 3, name="conv")(inputs)
    x = layers.BatchNormalization(name="conv_bn")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(5, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="small_network")
    bn = model.get_layer("conv_bn")
    rng = np.random.default_rng(seed)
    bn.set_weights(
        [rng.uniform(0.5, 2, units), rng.normal(0, 1, units)]
        + [rng.normal(0, 1, units), rng.uniform(0.5, 2, units)]
    )
    return model


def images(count=6, size=16, seed=1):
    return photo_like_images(count, (size, size), seed) / 127.5 - 1.0


def model_entries():
    return [entry for entry in cache.entries() if entry["kind"] == "model"]


def test_a_second_compile_takes_the_cached_model_and_answers_the_same(conversions):
    model, x = small_network(), images()
    first = compile_for_inference(model, "onnxruntime")
    expected = first.predict(x)
    assert_informative(expected, "the compiled model's outputs")
    assert conversions[0] == 1 and len(model_entries()) == 1

    again = compile_for_inference(small_network(), "onnxruntime")  # rebuilt: new layer names
    assert conversions[0] == 1, "the cached model should have been used"
    assert again.cache_key == first.cache_key
    np.testing.assert_array_equal(again.predict(x), expected)


def test_cache_false_neither_reads_nor_writes_it(conversions):
    compile_for_inference(small_network(), "onnxruntime", cache=False)
    compile_for_inference(small_network(), "onnxruntime", cache=False)
    assert conversions[0] == 2 and model_entries() == []


def test_other_weights_another_network_or_another_precision_miss_the_cache(conversions):
    x = images(40)
    base = compile_for_inference(small_network(), "onnxruntime")

    changed = small_network()
    kernel, bias = changed.get_layer("conv").get_weights()
    kernel[0, 0, 0, 0] += 1e-3  # one weight of one layer
    changed.get_layer("conv").set_weights([kernel, bias])
    other_weights = compile_for_inference(changed, "onnxruntime")
    other_network = compile_for_inference(small_network(units=7), "onnxruntime")
    int8 = compile_for_inference(
        small_network(), "onnxruntime", precision="int8", calibration=x[:32]
    )
    int8_other_images = compile_for_inference(
        small_network(), "onnxruntime", precision="int8", calibration=x[8:40]
    )

    keys = [c.cache_key for c in (base, other_weights, other_network, int8, int8_other_images)]
    assert len(set(keys)) == 5 and len(model_entries()) == 5
    # Both int8 forms quantize the float32 conversion of `base`, which the cache holds.
    assert conversions[0] == 3


def test_int8_quantizes_the_cached_float32_conversion_and_float32_takes_int8s(conversions):
    x = images(40)
    float32 = compile_for_inference(small_network(), "onnxruntime")
    int8 = compile_for_inference(small_network(), precision="int8", calibration=x[:32])
    assert conversions[0] == 1, "int8 should have quantized the cached float32 conversion"
    np.testing.assert_allclose(int8.predict(x), float32.predict(x), atol=0.05)

    cache.clear()
    int8_first = compile_for_inference(small_network(), precision="int8", calibration=x[:32])
    float32_after = compile_for_inference(small_network(), "onnxruntime")
    assert conversions[0] == 2, "float32 should have taken the conversion int8 stored"
    np.testing.assert_array_equal(int8_first.predict(x), int8.predict(x))
    np.testing.assert_array_equal(float32_after.predict(x), float32.predict(x))


def test_builder_arguments_are_part_of_the_key_and_automatic_names_are_not():
    def key(**options):
        model = create_model("mobilenet_v2", weights=None, input_shape=(32, 32, 3), **options)
        for weight in model.weights:  # the same values whatever the build: only the config differs
            weight.assign(np.full(weight.shape, 0.01, dtype=weight.dtype))
        return cache.model_key(model, "float32")

    assert key(alpha=0.35) == key(alpha=0.35)  # two builds in one session: other layer names
    assert key(alpha=0.35) != key(alpha=0.5)
    assert key(alpha=0.35) != key(alpha=0.35, classes=10)


def test_a_damaged_entry_is_rebuilt_and_the_answer_is_unchanged(conversions):
    model, x = small_network(), images()
    expected = compile_for_inference(model, "onnxruntime").predict(x)
    (entry,) = model_entries()
    path = os.path.join(cache.cache_dir(), entry["key"] + ".onnx")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    with open(path, "wb") as f:
        f.write(data)

    again = compile_for_inference(small_network(), "onnxruntime")
    assert conversions[0] == 2, "a damaged entry must not be used"
    np.testing.assert_array_equal(again.predict(x), expected)
    assert cache.load_model(entry["key"]) is not None  # rebuilt: passes its check again


def test_the_size_bound_removes_the_least_recently_used_models_first():
    for name in "abc":
        cache.store_model(name * 64, name.encode() * 1000, {"model": name})
        os.utime(os.path.join(cache.cache_dir(), name * 64 + ".onnx"), (0, ord(name)))
    cache.load_model("a" * 64)  # used now: the most recent
    cache.evict(limit=2000)
    assert sorted(entry["model"] for entry in model_entries()) == ["a", "c"]


def test_cache_list_and_clear_remove_only_what_the_cache_wrote(capsys):
    compile_for_inference(small_network(), "onnxruntime")
    foreign = os.path.join(cache.cache_dir(), "notes.txt")
    with open(foreign, "w") as f:
        f.write("mine")
    assert keras_nets_main(["cache", "list"]) == 0
    listing = capsys.readouterr().out
    assert "small_network" in listing and "float32" in listing
    assert "1 model, " in listing

    assert keras_nets_main(["cache", "clear"]) == 0
    assert "2 files removed" in capsys.readouterr().out
    assert model_entries() == [] and os.path.exists(foreign)


# --- keras-nets predict --fast: the warm start ---------------------------------------------------

HEAVY = ("tensorflow", "keras", "jax", "torch")
# The warm start, run in a fresh interpreter: keras-nets predict, then which of HEAVY it imported.
WARM_CHILD = f"""
import json, sys
from keras_nets.cli import main
status = main(sys.argv[1:])
imported = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps({{"status": status, "imported": imported}}))
"""


@pytest.fixture
def photos(tmp_path):
    paths = []
    for i, (width, height) in enumerate([(120, 90), (64, 80), (100, 100)]):
        path = tmp_path / f"photo{i}.jpg"
        Image.fromarray(photo_like_images(1, (height, width), i)[0].astype("uint8")).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def weights_file(tmp_path):
    model = create_model("mobilenet_v2", weights=None, alpha=0.35, input_shape=(32, 32, 3))
    rng = np.random.default_rng(3)
    for weight in model.weights:  # scores that differ between photos
        scale = 1.0 if "moving_variance" in weight.path or "gamma" in weight.path else 0.3
        values = (
            np.abs(rng.normal(0, scale, weight.shape))
            if scale == 1.0
            else rng.normal(0, scale, weight.shape)
        )
        weight.assign(values.astype("float32") + (0.5 if scale == 1.0 else 0.0))
    path = tmp_path / "mobilenet_v2.weights.h5"
    model.save_weights(path)
    return str(path)


def predict_args(photos, weights_file):
    return [
        "predict",
        *photos,
        "--model",
        "mobilenet_v2",
        "--alpha",
        "0.35",
        "--size",
        "32",
        "--weights",
        weights_file,
        "--fast",
        "--json",
        "--top",
        "1000",
    ]


def scores(output):
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return np.array(
        [[p["score"] for p in sorted(r["predictions"], key=lambda p: p["wnid"])] for r in records]
    )


def test_a_repeated_predict_fast_answers_from_the_cache_without_keras_or_a_backend(
    capsys, photos, weights_file
):
    args = predict_args(photos, weights_file)
    assert keras_nets_main(args) == 0
    cold = scores(capsys.readouterr().out)
    assert_informative(cold, "the scores of the photos")

    child = subprocess.run(
        [sys.executable, "-c", WARM_CHILD, *args], capture_output=True, text=True, check=False
    )
    *lines, summary = child.stdout.strip().splitlines()
    report = json.loads(summary)
    assert report["status"] == 0, child.stderr
    assert report["imported"] == [], f"the warm start imported {report['imported']}"
    np.testing.assert_allclose(scores("\n".join(lines)), cold, rtol=0, atol=1e-6)


def test_a_changed_weights_file_or_other_arguments_ask_another_request(photos, weights_file):
    def key(weights=weights_file, **options):
        options = {"crop_pct": None, "calibration": None, "alpha": 0.35, "size": 32} | options
        return cached.request_key("mobilenet_v2", weights, True, **options)

    first = key()
    assert key() == first
    assert key(alpha=0.5) != first and key(size=48) != first and key(crop_pct=0.9) != first
    assert key(weights="imagenet") != first
    assert cached.request_key("mobilenet_v2", weights_file, False) is None  # not --fast
    assert cached.request_key("mobilenet_v2", None, True) is None  # random weights
    calibration = os.path.dirname(photos[0])
    with_calibration = key(calibration=calibration)
    assert with_calibration not in (None, first)
    with open(photos[0], "ab") as f:  # one calibration image changes
        f.write(b"\0")
    assert key(calibration=calibration) != with_calibration
    with open(weights_file, "r+b") as f:  # one byte of the weights file, its size and mtime kept
        info = os.stat(weights_file)
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    os.utime(weights_file, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert key() != first


def test_a_warm_start_whose_model_entry_is_damaged_rebuilds_it(
    capsys, photos, weights_file, conversions
):
    args = predict_args(photos, weights_file)
    assert keras_nets_main(args) == 0
    cold = scores(capsys.readouterr().out)
    (entry,) = model_entries()
    path = os.path.join(cache.cache_dir(), entry["key"] + ".onnx")
    with open(path, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))

    assert keras_nets_main(args) == 0
    assert conversions[0] == 2, "a damaged entry must not be used"
    np.testing.assert_allclose(scores(capsys.readouterr().out), cold, rtol=0, atol=1e-6)
    assert cache.load_model(entry["key"]) is not None
    assert len([e for e in cache.entries() if e["kind"] == "request"]) == 1
