"""Images, folder datasets and weights files made on the spot, for the predict/train/notebook tests.

Nothing is downloaded: "ImageNet" weights are a model's own random initialisation saved to a file
(for tests that do not compare predictions; those use tests/informative_weights.py), and a
"pretrained" base is a randomly initialised one whose BatchNormalization statistics were set
from a batch of images, so that its features are neither exploding nor vanishing and a new head
can learn on top of the frozen base in a few steps.
"""

import json
import os

import keras
import numpy as np
from PIL import Image

import keras_nets

# The fast seed model the tests train and predict with: MobileNetV2, alpha 0.35, 96x96 inputs.
SMALL_MODEL = "mobilenet_v2"
SMALL_KWARGS = {"alpha": 0.35}
SMALL_SIZE = 96
# The same model with random weights on a command line: Keras loads, a model is built and run.
SMALL_RANDOM_MODEL_OPTIONS = f"--model {SMALL_MODEL} --weights none --alpha 0.35 --size 96".split()

COLOURS = {"blue": (0, 0, 1), "red": (1, 0, 0), "green": (0, 1, 0)}


def random_rgb(height=48, width=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype="uint8")


def smooth_rgb(height=48, width=64):
    """A picture JPEG keeps within a few levels: gradients and large blocks, no two sides alike."""
    y, x = np.mgrid[0:height, 0:width].astype("float64")
    blocks = ((y // 16 + x // 16) % 2) * 120 + 40
    pixels = np.stack([255 * x / width, 255 * y / height, blocks], axis=-1)
    return pixels.round().astype("uint8")


def write_images_of_every_mode(folder):
    """{description: path}: one picture (`smooth_rgb`) in every PIL mode and format people meet,
    plus a photo stored sideways with an EXIF orientation."""
    os.makedirs(folder, exist_ok=True)
    rgb = Image.fromarray(smooth_rgb())
    sixteen_bit = np.random.default_rng(1).integers(0, 65536, (48, 64)).astype("uint16")
    exif = rgb.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    images = {
        "rgb": (rgb, "rgb.jpg", {}),
        "grayscale": (rgb.convert("L"), "grayscale.png", {}),
        "rgba": (rgb.convert("RGBA"), "rgba.png", {}),
        "palette": (rgb.convert("P"), "palette.gif", {}),
        "cmyk": (rgb.convert("CMYK"), "cmyk.jpg", {}),
        "16-bit": (Image.fromarray(sixteen_bit), "sixteen_bit.png", {}),
        "exif-rotated": (rgb, "exif_rotated.jpg", {"exif": exif}),
    }
    paths = {}
    for description, (image, name, options) in images.items():
        paths[description] = os.path.join(folder, name)
        image.save(paths[description], **options)
    return paths


def write_broken_images(folder):
    """{description: path}: a text file named .jpg and a PNG cut in half."""
    os.makedirs(folder, exist_ok=True)
    not_an_image = os.path.join(folder, "not_an_image.jpg")
    with open(not_an_image, "w") as f:
        f.write("this is not a JPEG\n")
    whole = os.path.join(folder, "whole.png")
    Image.fromarray(random_rgb(seed=2)).save(whole)
    with open(whole, "rb") as f:
        data = f.read()
    os.remove(whole)
    truncated = os.path.join(folder, "truncated.png")
    with open(truncated, "wb") as f:
        f.write(data[: len(data) // 2])
    return {"not an image": not_an_image, "truncated": truncated}


def make_dataset(root, classes=("blue", "red"), train=16, validation=4, size=64, seed=0):
    """DATA_DIR/{train,validation}/<class>/*.png: noisy images tinted by their class colour."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("validation", validation)):
        for name in classes:
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                pixels = rng.uniform(0, 40, (size, size, 3)) + 200 * np.array(COLOURS[name])
                Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(f"{folder}/{i}.png")
    return root


DIGITS_TRAIN = 1400  # scikit-learn's digits: the first 1,400 scans train, the other 397 validate


def digits(size=32, classes=10):
    """(images, labels) of scikit-learn's 8x8 digits of classes 0 to `classes` - 1: real scans,
    upscaled bicubically to `size` x `size`, as 0-255 RGB float32 (grey in three channels)."""
    from sklearn.datasets import load_digits

    data = load_digits(n_class=classes)
    scans = (data.images * (255 / 16)).clip(0, 255).astype("uint8")
    images = np.stack(
        [
            np.asarray(Image.fromarray(scan).resize((size, size), Image.BICUBIC).convert("RGB"))
            for scan in scans
        ]
    )
    return images.astype("float32"), data.target


def write_digits_dataset(root, size=32, classes=10):
    """DATA_DIR/{train,validation}/<digit>/*.png from `digits(size, classes)`: the first
    DIGITS_TRAIN scans (of all 1,797 with ten classes) train, the others validate."""
    images, labels = digits(size, classes)
    train = round(DIGITS_TRAIN * len(images) / 1797)
    for i, (image, label) in enumerate(zip(images.astype("uint8"), labels)):
        folder = os.path.join(root, "train" if i < train else "validation", str(label))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"{i:04d}.png"))
    return root


def imagenet_like_weights(path, name=SMALL_MODEL, **kwargs):
    """A full 1000-class weights file for `name` at its default size (random values)."""
    keras.utils.set_random_seed(0)
    model = keras_nets.create_model(name, weights=None, **kwargs)
    model.save_weights(path)
    return str(path)


def calibrated_base_weights(path, name=SMALL_MODEL, size=SMALL_SIZE, **kwargs):
    """A notop weights file whose BatchNorm statistics were measured on reddish and bluish images."""
    from informative_weights import calibrate_batch_norm

    kwargs = SMALL_KWARGS if name == SMALL_MODEL and not kwargs else kwargs
    keras.utils.set_random_seed(0)
    model = keras_nets.create_model(
        name, weights=None, include_top=False, input_shape=(size, size, 3), **kwargs
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (16, size, size, 3)).astype("float32")
    images[:8, ..., 0] = np.maximum(images[:8, ..., 0], 165)
    images[8:, ..., 2] = np.maximum(images[8:, ..., 2], 165)
    calibrate_batch_norm(model, keras_nets.get_config(name).preprocess_input(images))
    model.save_weights(path)
    return str(path)


def write_trained_run(folder, class_names):
    """`folder` as `keras-nets train` leaves it: model.keras, the small model classifying
    `class_names` with outputs that vary with the image (`informative_classifier`), and
    class_names.json. Returns the Keras model."""
    from informative_weights import informative_classifier

    os.makedirs(folder, exist_ok=True)
    model = informative_classifier(SMALL_MODEL, len(class_names), SMALL_SIZE, **SMALL_KWARGS)
    model.save(os.path.join(folder, "model.keras"))
    with open(os.path.join(folder, "class_names.json"), "w") as f:
        json.dump(list(class_names), f)
    return model


def registered_tiny_network(name, preprocessing, filters=8):
    """Registers `name`: a 32x32 network with 1000 ImageNet classes, as a user's own module would
    (nothing in keras_nets edited). With include_top=False it ends at its convolution's feature
    map, a base `keras-nets train` builds a classifier on in a second where MobileNetV2 takes half
    a minute. A generator for a fixture: yields the builder, then unregisters it."""

    @keras_nets.register_model(
        name, default_size=32, min_size=32, preprocessing=preprocessing, published_weights=False
    )
    def TinyNetwork(weights=None, include_top=True, **_):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(filters, 3, strides=2, activation="relu", name="tiny_conv")(inputs)
        if not include_top:
            model = keras.Model(inputs, x, name=name)
            if weights is not None:
                model.load_weights(weights)
            return model
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        outputs = keras.layers.Dense(1000, activation="softmax", name="predictions")(x)
        model = keras.Model(inputs, outputs, name=name)
        if weights is not None:
            model.load_weights(weights)
        return model

    yield TinyNetwork
    keras_nets.registry.unregister_model(name)
