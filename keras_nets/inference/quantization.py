"""int8: static post-training quantization of a model's ONNX export, with ONNX Runtime's tools.

    fast = keras_nets.compile_for_inference(model, precision="int8", calibration=images)
    keras_nets.export(model, "model.int8.onnx", precision="int8", calibration=images)

The folded model's ONNX export goes through `onnxruntime.quantization.quantize_static`: QDQ
format, weights int8 per output channel, activations uint8 per tensor with ranges measured on the
calibration images (min-max). The weights are quantized to 7 bits (`reduce_range`): without
AVX512-VNNI, ONNX Runtime's uint8 x int8 kernels add pairs of products in 16 bits, which
saturates with 8-bit weights. Measured here (AMD EPYC, AVX2 only), MobileNetV2 with the tests'
generated weights: relative RMS logit error 0.61 with 7-bit weights, 0.90 with 8-bit ones (0.58
when the same 8-bit model runs without ONNX Runtime's fused int8 kernels: the kernels saturate).
ONNX Runtime runs the result (INT8_RUNTIMES).

Chosen over OpenVINO's NNCF: as fast or faster here at batch 8 (MobileNetV2 94 against 85 img/s;
ResNet50 6.3 against 7.3, within the noise of a busy machine), a smaller error on ResNet50 (0.23
against 0.42 of the largest logit), plain ONNX for `export`, and no extra package.
"""

import inspect
import os

import numpy as np

PRECISIONS = ("float32", "int8")
# The runtimes that run the int8 model. OpenVINO 2026.4 reads the QDQ file but its outputs are
# wrong (relative logit error 0.78 on ResNet50 where ONNX Runtime's is 0.23, measured here).
INT8_RUNTIMES = ("onnxruntime",)

# Min-max ranges come from the most extreme activations seen, so they grow with the sample: a
# handful of images misses what the next images reach, and those then saturate. Measured on the
# tests' generated Xception (71 px), relative RMS logit error against float32: 0.30 calibrated on
# 8 images, 0.15 on 32, 0.15 on 128. So 32 is the least we accept.
MIN_CALIBRATION_IMAGES = 32
# ONNX Runtime's calibration holds every activation of every calibration image at once (~60 MB
# per image for Xception at 299 px; its option to merge as it goes, CalibMaxIntermediateOutputs,
# drops the data instead in onnxruntime 1.32), so at most this many are used, spread evenly over
# what is given; the ranges stop moving well before (see MIN_CALIBRATION_IMAGES).
MAX_CALIBRATION_IMAGES = 64


def check_precision(precision, calibration, *, format=None, runtime=None):
    """The checks shared by `compile_for_inference` and `export`: one ValueError per misuse."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision={precision!r}: expected one of {', '.join(map(repr, PRECISIONS))}"
        )
    if precision == "float32":
        if calibration is not None:
            raise ValueError(
                "calibration is given but precision='float32': calibration images are for "
                "precision='int8'"
            )
        return
    if calibration is None:
        raise ValueError(
            f"precision='int8' needs calibration=: at least {MIN_CALIBRATION_IMAGES} images as "
            "the model takes them, or a folder of image files"
        )
    if format is not None and format != "onnx":
        raise ValueError(f"format={format!r} with precision='int8': expected format='onnx'")
    if runtime is not None and runtime not in ("auto", *INT8_RUNTIMES):
        raise ValueError(
            f"runtime={runtime!r} with precision='int8': expected 'auto' or "
            f"{', '.join(map(repr, INT8_RUNTIMES))}"
        )


def calibration_images(model, calibration, transform=None):
    """The calibration batch for `model`: float32 (n, height, width, channels), n >= 32.

    Args:
      model: the Keras model to quantize (its input shape is checked).
      calibration: a numpy array of images as the model takes them (preprocessed, float), or a
        folder path: its image files (walked as `keras-nets predict` walks folders) read through
        `transform`. Of more than 64 images, 64 spread evenly over them are used.
      transform: for a folder, how a file becomes the model's input: an `EvalTransform`
        (`keras_nets.eval_transform(name, size)`, the model's evaluation pipeline). None: only
        for a model that preprocesses its input itself (a `keras-nets train` classifier,
        `include_preprocessing=True`), whose files are resized to its input size.
    """
    if isinstance(calibration, (str, os.PathLike)):
        images = _read_folder(model, calibration, transform)
        what = f"calibration={os.fspath(calibration)!r}"
    else:
        if not isinstance(calibration, np.ndarray):
            raise ValueError(
                f"calibration of type {type(calibration).__name__}: expected a numpy array of "
                "images or a folder path"
            )
        images = calibration
        what = f"calibration of shape {images.shape} and dtype {images.dtype}"
    expected = tuple(model.inputs[0].shape[1:])
    if images.ndim != 1 + len(expected) or any(
        want is not None and got != want for got, want in zip(images.shape[1:], expected)
    ):
        raise ValueError(f"{what}: expected images of shape (n, {', '.join(map(str, expected))})")
    if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
        raise ValueError(f"{what}: expected numbers (float32 images as the model takes them)")
    if len(images) < MIN_CALIBRATION_IMAGES:
        raise ValueError(
            f"{what}: {len(images)} images, expected at least {MIN_CALIBRATION_IMAGES} (a few "
            "hundred is better): fewer give activation ranges the next images exceed"
        )
    images = evenly_spaced(images, MAX_CALIBRATION_IMAGES).astype("float32")
    if not np.isfinite(images).all():
        raise ValueError(f"{what}: expected finite values, found NaN or infinity")
    check_input_range(model, images, what)
    return images


# The input range of each way a model takes its pixels: `imagenet.preprocess_input`'s modes on
# 0-255 RGB, and "none" (the model scales its input itself).
INPUT_RANGES = {
    "tf": (-1.0, 1.0),  # x / 127.5 - 1
    "torch": ((0 - 0.485) / 0.229, (1 - 0.406) / 0.225),  # (x / 255 - mean) / std, per channel
    "caffe": (-123.68, 255 - 103.939),  # BGR, x - mean per channel
    "none": (0.0, 255.0),
}
WHAT_INPUT = {
    "tf": "pixels scaled to [-1, 1] (preprocess_input mode 'tf')",
    "torch": "pixels normalised by the ImageNet mean and std (preprocess_input mode 'torch')",
    "caffe": "BGR pixels minus the ImageNet mean (preprocess_input mode 'caffe')",
    "none": "raw 0-255 RGB pixels (it scales them itself)",
}
# Calibration values may overshoot the range by this fraction of its width (float rounding,
# interpolation), and must span at least MIN_SPAN of it: images that fill a twentieth of the
# range were scaled for another model (raw 0-255 photos cover [0, 255]; in mode "tf", [-1, 1]).
RANGE_TOLERANCE = 0.01
MIN_SPAN = 0.05


def check_input_range(model, images, what):
    """A ValueError, one line, if the calibration values do not fit the input the model takes.

    Activation ranges measured on wrongly scaled images are wrong for every real image: raw
    0-255 photos for a model that takes [-1, 1] left 36 % top-1 agreement with float32 instead
    of 89 % (issue 22's probe). What the model takes is known for a model that scales its input
    itself (`takes_raw_pixels`: 0-255) and for a registry model, by its name
    (`expected_preprocessing`); for any other model nothing is checked.
    """
    mode = expected_preprocessing(model)
    if mode is None:
        return
    low, high = INPUT_RANGES[mode]
    width = high - low
    seen_low, seen_high = float(images.min()), float(images.max())
    outside = seen_low < low - RANGE_TOLERANCE * width or seen_high > high + RANGE_TOLERANCE * width
    if outside or seen_high - seen_low < MIN_SPAN * width:
        raise ValueError(
            f"{what}: values from {seen_low:.4g} to {seen_high:.4g}, but model {model.name!r} "
            f"takes {WHAT_INPUT[mode]}, from {low:.4g} to {high:.4g}: calibrate on images "
            "preprocessed as the model takes them (a folder of image files: give "
            "transform=keras_nets.eval_transform(name, size))"
        )


def expected_preprocessing(model):
    """How `model` takes its pixels: "none" if it scales them itself (`takes_raw_pixels`), else
    the `preprocessing` of the registry model its name comes from ("mobilenetv2_0.35_96":
    mobilenet_v2; the longest matching name wins), else None (a model of your own: unknown)."""
    from keras_nets.core import factory
    from keras_nets.inference.writers import takes_raw_pixels

    if takes_raw_pixels(model):
        return "none"
    name = model.name.lower()
    best = None
    for config in factory.models().values():
        builder_name = inspect.signature(config.function).parameters.get("name")
        exact = {config.name, str(getattr(builder_name, "default", None)).lower()}
        prefixes = (f"{config.name}_", f"{config.name.replace('_', '')}_")
        if name in exact:
            best = (len(name) + 1, config.preprocessing)  # an exact name beats every prefix
            break
        matched = [p for p in prefixes if name.startswith(p)]
        if matched and (best is None or len(max(matched, key=len)) > best[0]):
            best = (len(max(matched, key=len)), config.preprocessing)
    mode = None if best is None else best[1]
    # "none" in the registry scales in the graph; this model does not (include_preprocessing
    # =False): what it takes then is not recorded anywhere.
    return None if mode == "none" else mode


def _read_folder(model, folder, transform):
    from keras_nets.images.files import ImageError, read_image, walk_images
    from keras_nets.images.transforms import trained_transform
    from keras_nets.inference.writers import takes_raw_pixels

    if not os.path.isdir(folder):
        raise ValueError(
            f"calibration={os.fspath(folder)!r}: expected a folder of images or an array"
        )
    if transform is None:
        if not takes_raw_pixels(model):
            raise ValueError(
                f"calibration={os.fspath(folder)!r}: model {model.name!r} does not preprocess its "
                "input itself, so give transform=keras_nets.eval_transform(name, size) to read "
                "the folder with, or calibration as an array of preprocessed images"
            )
        transform = trained_transform(model.inputs[0].shape[1])
    images = []
    for path in evenly_spaced(list(walk_images(folder)), MAX_CALIBRATION_IMAGES):
        try:
            images.append(transform(read_image(path)))
        except ImageError:
            continue  # an unreadable file is not an image to calibrate on
    if not images:
        return np.zeros((0, *model.inputs[0].shape[1:]), "float32")
    return np.asarray(transform.preprocess(np.stack(images)), dtype="float32")


def evenly_spaced(items, count):
    """At most `count` of `items`, spread evenly from first to last (every class of a folder
    sorted by class, not only the first ones)."""
    if len(items) <= count:
        return items
    chosen = np.linspace(0, len(items) - 1, count).round().astype(int)
    return items[chosen] if isinstance(items, np.ndarray) else [items[i] for i in chosen]


def quantize_onnx(onnx_model, images):
    """The int8 form of an ONNX model (bytes), activation ranges measured on `images`; bytes."""
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self, input_name):
            self.input_name = input_name
            self.batches = iter(np.array_split(images, max(1, len(images) // 8)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {self.input_name: np.ascontiguousarray(batch)}

    # (Directories that killed quantizations left are removed by the ONNX conversion that always
    # comes first: writers.remove_stale_temporary_directories.)
    with tempfile.TemporaryDirectory(prefix="keras-nets-int8-") as tmp:
        float_path = os.path.join(tmp, "float32.onnx")
        prepared = os.path.join(tmp, "prepared.onnx")
        quantized = os.path.join(tmp, "int8.onnx")
        with open(float_path, "wb") as f:
            f.write(onnx_model)
        # Folds constants and infers shapes, so the quantizer sees every convolution's input.
        quant_pre_process(float_path, prepared, skip_symbolic_shape=True)
        import onnx

        input_name = onnx.load_model(prepared, load_external_data=False).graph.input[0].name
        quantize_static(
            prepared,
            quantized,
            Batches(input_name),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
        )
        with open(quantized, "rb") as f:
            return f.read()


def int8_onnx_writer(images):
    """A writer `(model, path)` for `export`: the ONNX export of `model`, quantized on `images`."""
    from keras_nets.inference.writers import onnx_bytes

    def write(model, path):
        with open(path, "wb") as f:
            f.write(quantize_onnx(onnx_bytes(model), images))

    return write
