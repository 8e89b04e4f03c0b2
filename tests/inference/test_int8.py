"""precision="int8": the model's ONNX export statically quantized (ONNX Runtime's tools) follows
the float32 Keras model within what quantization allows; misuse gets one clear error.

The tolerance, and why it is loose here. The seed models run with the informative weights of
informative_weights.py (random kernels, BatchNorm statistics calibrated so outputs vary with the
input), with a 10-class top so that the top-1 class means something. Such random deep networks
are chaotic: a small change of one layer's activations grows layer after layer, which trained
networks' do not (other calibrations, percentile, change nothing: measured). Measured here on 64
held-out images, calibrated on 32, int8 against float32:

  model (input)                 relative RMS logit error   top-1 agreement
  mobilenet_v2 (0.35, 96 px)    0.61                       0.31
  resnet50 (32 px)              0.26                       0.36
  inception_v3 (75 px)          0.18                       0.77
  xception (71 px)              0.15                       0.95

(relative RMS error: RMS of int8 - float32 over RMS of float32). Two of them are tested, the two
whose graphs hold every kind of layer the others quantize: Xception (separable, so depthwise and
pointwise, convolutions; residual sums) and Inception V3 (plain convolutions whose BatchNorm has
no scale; concatenation, the one model here that has it; average and max pooling). MobileNetV2's
graph (depthwise convolutions, ReLU6, zero padding, residual sums) is quantized under a bound 10x
tighter by the trained network's test at the end; ResNet50 (plain convolutions, zero padding,
residual sums, max pooling) adds no kind of layer to those, only 33 s. The bounds below sit ~1.3x
above these errors and well under these agreements; a broken quantization (no or wrong
calibration, wrong scales or axis) gives errors near 1 and agreement at chance (0.1). The lower
bound on the error proves that int8 ran at all (float rounding is ~1e-6). Fidelity on trained
networks (top-1 agreement >= 99 %) is measured by benchmarks/int8_fidelity.py, not here.

These errors depend on the CPU: ONNX Runtime's uint8 x int8 kernels saturate 8-bit weights
without VNNI but not with it, so a bound on them catches 8-bit weights only on an AVX2-only CPU.
What must hold on every CPU, 7-bit weights, is read from the exported file's initializers.
"""

import functools

import keras
import numpy as np
import pytest
from generated_data import registered_tiny_network
from informative_weights import informative_model, random_images
from model_sample import NEWER_FAMILIES
from PIL import Image
from published_layout import assert_same_outputs
from required_runtimes import require_runtime

import keras_nets
from keras_nets import compile_for_inference, export, get_config
from keras_nets.cli import main
from keras_nets.inference import folding, quantization
from keras_nets.preprocessing import trained_transform

pytestmark = pytest.mark.slow_file  # minutes: parallel runs start it first

# Registry name: (input size, builder options), the smallest each model takes; the docstring says
# why these two.
SMALL = {
    "inception_v3": (75, {}),
    "xception": (71, {}),
}
# Registry name: (largest relative RMS logit error, smallest top-1 agreement); see the docstring.
TOLERANCE = {
    "inception_v3": (0.25, 0.5),
    "xception": (0.2, 0.75),
}
CLASSES = 10
CALIBRATION = 32  # quantization.MIN_CALIBRATION_IMAGES
HELD_OUT = 32


def relative_rms_error(got, expected):
    return float(np.sqrt(np.mean((got - expected) ** 2) / np.mean(expected**2)))


def top1_agreement(got, expected):
    return float(np.mean(got.argmax(1) == expected.argmax(1)))


@pytest.mark.parametrize("name", list(SMALL))
def test_int8_logits_follow_float32_at_batch_1_and_8(name):
    require_runtime("onnxruntime")
    size, options = SMALL[name]
    config = get_config(name)
    model = informative_model(name, size, classes=CLASSES, classifier_activation=None, **options)
    calibration = config.preprocess_input(random_images(CALIBRATION, size, seed=1))
    held_out = config.preprocess_input(random_images(HELD_OUT, size, seed=2))

    fast = compile_for_inference(model, precision="int8", calibration=calibration)

    assert (fast.runtime, fast.precision) == ("onnxruntime", "int8")
    expected = keras.ops.convert_to_numpy(model(held_out, training=False))
    batch_8 = fast.predict(held_out, batch_size=8)  # parts side by side, one per core
    batch_1 = np.concatenate([fast.predict(image[None]) for image in held_out[:8]])  # whole
    max_error, min_agreement = TOLERANCE[name]
    error = relative_rms_error(batch_8, expected)
    assert 1e-3 < error < max_error, f"relative RMS logit error {error:.3f}"
    agreement = top1_agreement(batch_8, expected)
    assert agreement >= min_agreement, f"top-1 agreement {agreement:.0%}"
    # The same integer arithmetic whole or split: batch 1 gives batch 8's rows.
    np.testing.assert_allclose(batch_1, batch_8[:8], atol=1e-4 * np.abs(expected).max())


# The smallest member of each family issue 27 added (tests/model_sample.py: the others are its
# builder at another depth or width), at a size where their generated networks are not chaotic:
# 0.01 added to EfficientNet-B0's 0-255 pixels moved its logits by 22 % at 32 px (its float32
# ONNX export differed by as much), EfficientNetV2-B0's by 11 % at 64 px and 0.3 % at 96. The
# bounds sit about 1.3x above the error and under the agreement measured (CLASSES = 10: chance
# agrees on 10 %). EfficientNet and EfficientNetV2 quantize worst: their generated networks lose
# most of their answers under every ONNX Runtime recipe tried on B0 at 64 px (relative error 0.63
# to 0.70: convolutions alone quantized, 8-bit weights, sigmoid and multiply left in float32), so
# their bounds prove only that int8 ran and is not noise; docs/benchmarks.md (int8) measures
# trained ones.
NEWER_FAMILY_BOUNDS = {  # input size, largest error, smallest agreement; measured: error, agreement
    "resnet101": (64, 0.45, 0.35),  # 0.36, 0.50
    "resnet50_v2": (64, 0.5, 0.4),  # 0.39, 0.53
    "efficientnet_b0": (96, 0.85, 0.3),  # 0.64, 0.41
    "efficientnet_v2_b0": (96, 0.65, 0.15),  # 0.48, 0.22
    "nasnet_mobile": (64, 0.55, 0.5),  # 0.42, 0.69
    "convnext_tiny": (64, 0.1, 0.85),  # 0.066, 0.94
}


@pytest.mark.parametrize("name", NEWER_FAMILIES)  # tests/model_sample.py
def test_each_newer_family_runs_fast_exactly_in_float32_and_within_its_bound_in_int8(name):
    """One ONNX conversion serves both: int8 quantizes the compiled-model cache's float32 entry."""
    require_runtime("onnxruntime")
    size, max_error, min_agreement = NEWER_FAMILY_BOUNDS[name]
    config = get_config(name)
    model = informative_model(name, size, classes=CLASSES, classifier_activation=None)
    calibration = config.preprocess_input(random_images(CALIBRATION, size, seed=1))
    held_out = config.preprocess_input(random_images(HELD_OUT, size, seed=2))
    expected = keras.ops.convert_to_numpy(model(held_out, training=False))

    float32 = compile_for_inference(model, "onnxruntime")
    assert folding.foldable_pairs(float32.model) == {}, "a foldable BatchNormalization is left"
    assert_same_outputs(float32.predict(held_out, batch_size=8), expected, 5e-4)

    int8 = compile_for_inference(model, precision="int8", calibration=calibration)
    got = int8.predict(held_out, batch_size=8)
    error = relative_rms_error(got, expected)
    assert 1e-3 < error < max_error, f"relative RMS logit error {error:.3f}"
    agreement = top1_agreement(got, expected)
    assert agreement >= min_agreement, f"top-1 agreement {agreement:.0%}"


# --- export ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    """Convolutions and their BatchNormalizations, then logits: quick to convert and quantize."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Conv2D(16, 3, strides=2)(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="tiny")


def tiny_images(count, seed=0):
    return random_images(count, 16, seed) / 127.5 - 1.0


def test_export_int8_writes_a_quantized_onnx_file_that_follows_float32(tiny_model, tmp_path):
    require_runtime("onnxruntime")
    import onnx
    import onnxruntime

    path = tmp_path / "tiny.int8.onnx"
    assert export(tiny_model, path, precision="int8", calibration=tiny_images(32)) == path

    graph = onnx.load(path).graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    int8_weights = [  # not the zero points, which are int8 too
        t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2
    ]
    assert len(int8_weights) == 3, "the two convolutions' and the Dense kernels are int8"
    # 7-bit weights (reduce_range), whatever this CPU: without AVX512-VNNI, ONNX Runtime's
    # uint8 x int8 kernels add pairs of products in 16 bits, which 8-bit weights can saturate.
    for weight in int8_weights:
        values = onnx.numpy_helper.to_array(weight).astype(int)
        assert values.min() >= -64 and values.max() <= 64, weight.name
        assert np.abs(values).max() == 64, weight.name  # the 7 bits are used, per channel's max
    for (
        node
    ) in graph.node:  # one scale per output channel: axis 0 of OIHW, 1 of a Dense's (in, out)
        weight = initializers.get(node.input[0])
        if node.op_type == "DequantizeLinear" and weight in int8_weights:
            axis = {a.name: a.i for a in node.attribute}.get("axis", 1)
            assert axis == (0 if len(weight.dims) == 4 else 1), node.name
            assert list(initializers[node.input[1]].dims) == [weight.dims[axis]], node.name
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = tiny_images(16, seed=5).astype("float32")
    got = session.run(None, {session.get_inputs()[0].name: images})[0]
    expected = tiny_model.predict(images, verbose=0)
    assert 1e-4 < relative_rms_error(got, expected) < 0.05  # a shallow net: float's within 5 %
    assert not list(tmp_path.glob(".keras-nets-export-*")), "the staging directory is gone"


# --- Misuse ---------------------------------------------------------------------------------------


def folder_of(tmp_path, count):
    from PIL import Image

    folder = tmp_path / "calibration"
    folder.mkdir()
    for i, image in enumerate(random_images(count, 20, seed=9)):
        Image.fromarray(image.astype("uint8")).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"precision": "int16"}, r"precision='int16': expected one of 'float32', 'int8'"),
        ({"precision": "int8"}, r"precision='int8' needs calibration=.*at least 32"),
        (
            {"calibration": np.zeros((32, 16, 16, 3))},
            r"calibration is given but precision='float32'",
        ),
        (
            {"precision": "int8", "calibration": np.zeros((8, 16, 16, 3))},
            r"calibration of shape \(8, 16, 16, 3\).*: 8 images, expected at least 32",
        ),
        (
            {"precision": "int8", "calibration": np.zeros((32, 20, 20, 3))},
            r"calibration of shape \(32, 20, 20, 3\).*expected images of shape \(n, 16, 16, 3\)",
        ),
        (
            {"precision": "int8", "calibration": np.zeros((32, 16, 16))},
            r"expected images of shape \(n, 16, 16, 3\)",
        ),
        (
            {"precision": "int8", "calibration": np.full((32, 16, 16, 3), "a")},
            r"dtype <U1: expected numbers",
        ),
        (
            {"precision": "int8", "calibration": np.full((32, 16, 16, 3), np.nan)},
            r"expected finite values",
        ),
        (
            {"precision": "int8", "calibration": [[0.0]] * 32},
            r"calibration of type list: expected a numpy array of images or a folder path",
        ),
        (
            {"precision": "int8", "calibration": "no/such/folder"},
            r"calibration='no/such/folder': expected a folder of images",
        ),
        (
            {
                "precision": "int8",
                "calibration": np.zeros((32, 16, 16, 3)),
                "runtime": "tensorflow",
            },
            r"runtime='tensorflow' with precision='int8': expected 'auto' or 'onnxruntime'",
        ),
        (
            {"precision": "int8", "calibration": np.zeros((32, 16, 16, 3)), "runtime": "openvino"},
            r"runtime='openvino' with precision='int8'",
        ),
    ],
    ids=[
        "unknown-precision",
        "int8-without-calibration",
        "calibration-without-int8",
        "too-few",
        "wrong-size",
        "no-channels",
        "strings",
        "nan",
        "a-list",
        "missing-folder",
        "tensorflow-runtime",
        "openvino-runtime",
    ],
)
def test_bad_precision_or_calibration_is_one_clear_error(tiny_model, arguments, message):
    arguments = dict(arguments)
    runtime = arguments.pop("runtime", "auto")
    with pytest.raises(ValueError, match=message):
        compile_for_inference(tiny_model, runtime, **arguments)


def test_a_folder_needs_a_transform_and_enough_readable_images(tiny_model, tmp_path):
    folder = folder_of(tmp_path, 3)
    (folder / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"model 'tiny' does not preprocess its input.*transform="):
        compile_for_inference(tiny_model, precision="int8", calibration=folder)
    transform = keras_nets.eval_transform("mobilenet_v2", size=16)
    with pytest.raises(
        ValueError, match=r"calibration='.*calibration': 3 images, expected at least 32"
    ):
        compile_for_inference(
            tiny_model, precision="int8", calibration=str(folder), transform=transform
        )


def test_calibration_uses_64_images_spread_over_all_and_every_readable_file(tiny_model, tmp_path):
    """Of 100 images, the 64 at evenly spaced positions, first and last included; from a folder,
    every readable file, an unreadable one among them skipped."""
    images = np.arange(100, dtype="float32")[:, None, None, None] * np.ones((1, 16, 16, 3))
    used = quantization.calibration_images(tiny_model, images)
    assert used.shape == (64, 16, 16, 3)
    assert used[:, 0, 0, 0].tolist() == np.linspace(0, 99, 64).round().tolist()

    folder = folder_of(tmp_path, 33)
    (folder / "15.5.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # sorts among the readable ones
    from_folder = quantization.calibration_images(tiny_model, folder, trained_transform(16))
    assert from_folder.shape == (33, 16, 16, 3)


def test_export_int8_takes_only_onnx(tiny_model, tmp_path):
    with pytest.raises(
        ValueError, match=r"format='tflite' with precision='int8': expected format='onnx'"
    ):
        export(tiny_model, tmp_path / "m.tflite", precision="int8", calibration=tiny_images(32))
    assert list(tmp_path.iterdir()) == []


# --- keras-nets predict --fast --int8 --calibration DIR -------------------------------------------


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--int8", "--calibration", "."], "--int8 goes with --fast"),
        (["--fast", "--int8"], "--int8 needs --calibration DIR"),
        (["--fast", "--calibration", "."], "--calibration goes with --int8"),
    ],
    ids=["int8-without-fast", "int8-without-calibration", "calibration-without-int8"],
)
def test_cli_int8_flags_go_together(capsys, tmp_path, flags, message):
    status = main(["predict", str(tmp_path / "any.jpg"), *flags])
    _, err = capsys.readouterr()
    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"keras-nets predict: error: {message}")


@pytest.fixture
def tiny_registered():
    """A registered 32x32 network (1000 classes, as `predict` decodes ImageNet's)."""
    yield from registered_tiny_network("tiny_int8", preprocessing="tf", filters=16)


@pytest.mark.parametrize("into_file", [False, True], ids=["table", "output-file"])
def test_cli_predicts_through_int8_calibrated_on_the_folder(
    capsys, tmp_path, tiny_registered, monkeypatch, into_file
):
    require_runtime("onnxruntime")
    weights = tmp_path / "tiny.weights.h5"
    tiny_registered().save_weights(weights)
    folder = folder_of(tmp_path, 32)
    compiled = []
    original = keras_nets.compile_for_inference

    def spy(model, *args, **kwargs):
        compiled.append(original(model, *args, **kwargs))
        return compiled[-1]

    monkeypatch.setattr(keras_nets, "compile_for_inference", spy)
    calibrated_on = []
    quantize_onnx = quantization.quantize_onnx

    def record_calibration(onnx_model, images):
        calibrated_on.append(images)
        return quantize_onnx(onnx_model, images)

    monkeypatch.setattr(quantization, "quantize_onnx", record_calibration)
    results = tmp_path / "results.jsonl"
    output = ["--output", str(results)] if into_file else ["--json"]
    status = main(
        [
            "predict",
            str(folder / "0.png"),
            "--model",
            "tiny_int8",
            "--weights",
            str(weights),
            "--fast",
            "--int8",
            "--calibration",
            str(folder),
            *output,
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    assert [fast.precision for fast in compiled] == ["int8"]
    assert (
        err.count(
            "keras-nets predict: --fast: loading the model and converting it and "
            "quantizing it to int8 on the --calibration images"
        )
        == 1
    )
    # --output: the results file's lines after the first (the model that wrote them)
    printed = "".join(results.read_text().splitlines(True)[1:]) if into_file else out
    assert len(printed.splitlines()) == 1 and '"predictions"' in printed
    # Calibrated on the folder as the model sees it: each file through the model's evaluation
    # pipeline (shorter side to 37, bicubic, central 32x32), then preprocess_input ("tf": x/127.5-1).
    pipeline = keras_nets.eval_transform("tiny_int8", size=32)
    pixels = np.stack([pipeline(Image.open(path)) for path in sorted(folder.iterdir())])
    (images,) = calibrated_on
    np.testing.assert_allclose(images, pixels / 127.5 - 1.0, atol=1e-6)


# --- A network with learned weights ---------------------------------------------------------------


def colour_images(count, size, seed):
    """(images, labels): noisy pictures tinted red, green or blue, the label their tint."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = rng.uniform(0, 60, (count, size, size, 3)) + 180 * np.eye(3)[labels][:, None, None, :]
    return images.clip(0, 255).astype("float32"), labels


def test_int8_of_a_network_trained_end_to_end_keeps_its_answers():
    """Trained weights are not chaotic as the generated ones are, so here the bound is tight: the
    issue's fidelity proxy (benchmarks/int8_fidelity.py: 99.8 %, error 0.061 for MobileNetV2 at
    96 px), small. Measured here: agreement 100 %, relative RMS logit error 0.038. The bound, 0.08,
    fails 8-bit weights that saturate ONNX Runtime's AVX2 kernels (0.11) and ranges calibrated
    on images four times too dark (1.28)."""
    require_runtime("onnxruntime")
    from informative_weights import informative_classifier

    model = informative_classifier("mobilenet_v2", 3, 64, alpha=0.35, freeze=False)
    head = model.get_layer("predictions")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])  # a new head learns faster
    images, labels = colour_images(192, 64, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=4, batch_size=32, verbose=0)
    model.get_layer("predictions").activation = keras.activations.linear  # compare logits
    calibration, _ = colour_images(32, 64, seed=1)
    held_out, held_out_labels = colour_images(96, 64, seed=2)

    fast = compile_for_inference(model, precision="int8", calibration=calibration)

    expected = keras.ops.convert_to_numpy(model(held_out, training=False))
    # The network learned its task (100 % on one machine, 99 % on another: float32 training is not
    # bit-identical across CPUs); what is tested is int8's agreement with it, below.
    assert np.mean(expected.argmax(1) == held_out_labels) >= 0.95, "the network learned its task"
    got = fast.predict(held_out, batch_size=8)
    error = relative_rms_error(got, expected)
    assert 1e-3 < error < 0.08, f"relative RMS logit error {error:.3f}"
    assert top1_agreement(got, expected) >= 0.99


# --- Calibration images scaled as the model takes them ------------------------------------------


def raw_photos(count=32, size=32):
    return random_images(count, size, seed=3)  # 0-255 RGB


@functools.cache
def small_registry_model(name, include_preprocessing=False):
    options = {"alpha": 0.35} if name == "mobilenet_v2" else {}
    return keras_nets.create_model(
        name,
        weights=None,
        input_shape=(32, 32, 3),
        classes=10,
        include_preprocessing=include_preprocessing,
        **options,
    )


@pytest.mark.parametrize(
    "name, raw_input, scale, accepted",
    [
        ("mobilenet_v2", False, "raw", False),  # takes [-1, 1]: the probe's case
        ("mobilenet_v2", False, "tf", True),
        ("resnet50", False, "tf", False),  # takes BGR minus the mean: [-1, 1] fills 1 % of it
        ("resnet50", False, "caffe", True),
        ("densenet121", False, "raw", False),  # takes the ImageNet-normalised pixels
        ("densenet121", False, "torch", True),
        ("mobilenet_v2", True, "tf", False),  # include_preprocessing=True: takes 0-255
        ("mobilenet_v2", True, "raw", True),
    ],
    ids=[
        "tf-model-raw-photos",
        "tf-model-tf",
        "caffe-model-tf",
        "caffe-model-caffe",
        "torch-model-raw-photos",
        "torch-model-torch",
        "raw-model-tf",
        "raw-model-raw-photos",
    ],
)
def test_calibration_images_scaled_for_another_input_are_refused(name, raw_input, scale, accepted):
    """Ranges measured on wrongly scaled images are wrong for every real image (the probe: raw
    photos for MobileNetV2, 36 % top-1 agreement with float32 instead of 89 %)."""
    from keras_nets.imagenet import preprocess_input
    from keras_nets.inference.quantization import calibration_images

    model = small_registry_model(name, raw_input)
    photos = raw_photos()
    images = photos if scale == "raw" else np.asarray(preprocess_input(photos, mode=scale))
    if accepted:
        assert calibration_images(model, images).shape == (32, 32, 32, 3)
    else:
        with pytest.raises(
            ValueError,
            match=rf"calibration of shape .*: values from .* but model "
            rf"'{model.name}' takes .*: calibrate on images "
            "preprocessed as the model takes them",
        ):
            calibration_images(model, images)


def test_compile_for_inference_refuses_raw_photos_for_a_model_that_takes_minus_1_to_1():
    model = small_registry_model("mobilenet_v2")
    with pytest.raises(
        ValueError,
        match=r"values from \d.* to 2\d\d.*, but model "
        r"'mobilenetv2_0.35_32' takes pixels scaled to \[-1, 1\]",
    ):
        compile_for_inference(model, precision="int8", calibration=raw_photos())
