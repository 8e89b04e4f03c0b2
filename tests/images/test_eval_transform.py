"""Each model's evaluation pipeline (`keras_nets.preprocessing.eval_transform`) is its config's.

The expected pixels are computed here, independently, with PIL and numpy: the shorter side to
round(size / crop_pct) with the config's filter, the central size x size square, then the
model's `preprocess_input`.
"""

import re

import numpy as np
import pytest
from PIL import Image

import keras_nets
from keras_nets.preprocessing import EvalTransform, eval_transform, trained_transform

# What Keras' published accuracies were measured with (keras-team/keras-applications#88: shorter
# side 256, central 224, bicubic), and TF-slim's pipeline for MobileNetV3 (0.875, bilinear).
PUBLISHED_PIPELINES = dict.fromkeys(keras_nets.list_models(), (0.875, "bicubic"))
PUBLISHED_PIPELINES.update(
    mobilenet_v3_small=(0.875, "bilinear"), mobilenet_v3_large=(0.875, "bilinear")
)
# EfficientNet's: the paper's TPU evaluation, a central size / (size + 32) of the shorter side,
# bicubic (tensorflow/tpu models/official/efficientnet/preprocessing.py, CROP_PADDING = 32).
PUBLISHED_PIPELINES.update(
    {
        f"efficientnet_b{k}": (size / (size + 32), "bicubic")
        for k, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600))
    }
)
# EfficientNetV2's: the reference's (google/automl efficientnetv2). B0-B3 with its legacy
# EfficientNet pipeline (preprocess_legacy.py: size / (size + 32), bicubic); S, M and L with its
# own (preprocessing.py preprocess_for_eval: no crop at 320 px and above, bilinear resize).
PUBLISHED_PIPELINES.update(
    {
        f"efficientnet_v2_b{k}": (size / (size + 32), "bicubic")
        for k, size in enumerate((224, 240, 260, 300))
    },
    efficientnet_v2_s=(1.0, "bilinear"),
    efficientnet_v2_m=(1.0, "bilinear"),
    efficientnet_v2_l=(1.0, "bilinear"),
)
# NASNetLarge's: timm's config of the same TF-slim checkpoint (timm/models/nasnet.py,
# nasnetalarge.tf_in1k: crop_pct 0.911, bicubic); Keras' table's author describes only his 224 pipeline.
PUBLISHED_PIPELINES.update(nasnet_large=(0.911, "bicubic"))
FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}


def photo(width=300, height=200, seed=0):
    """A landscape picture with detail everywhere, so a misplaced crop changes the pixels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 / width, y * 255 / height, (x * y) % 256], axis=-1)
    pixels = pixels + rng.normal(0, 20, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"))


def expected_pixels(image, size, crop_pct, resample):
    width, height = image.size
    shorter = round(size / crop_pct)
    scale = shorter / min(width, height)
    resized = image.resize((round(width * scale), round(height * scale)), resample)
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype="float32")


@pytest.mark.parametrize("name", keras_nets.list_models())
def test_each_models_pipeline_is_its_configs(name):
    config = keras_nets.get_config(name)
    transform = eval_transform(name)
    assert (config.crop_pct, config.interpolation) == PUBLISHED_PIPELINES[name]
    assert transform == EvalTransform(
        config.default_size, config.crop_pct, config.interpolation, config.preprocessing
    )
    image = photo()
    pixels = transform(image)
    expected = expected_pixels(
        image, config.default_size, config.crop_pct, FILTERS[config.interpolation]
    )
    assert pixels.shape == (config.default_size, config.default_size, 3)
    assert pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels, expected)
    batch = np.stack(
        [
            pixels,
            expected_pixels(
                photo(seed=1), config.default_size, config.crop_pct, FILTERS[config.interpolation]
            ),
        ]
    )
    np.testing.assert_array_equal(transform.preprocess(batch), config.preprocess_input(batch))


def test_a_portrait_is_cropped_in_its_centre_too():
    image = photo(width=150, height=260)
    transform = eval_transform("mobilenet_v2", size=96)
    assert transform.resize_size == 110  # round(96 / 0.875)
    np.testing.assert_array_equal(
        transform(image), expected_pixels(image, 96, 0.875, Image.BICUBIC)
    )


def test_arrays_and_pil_images_of_any_mode_give_the_same_pixels():
    image = photo()
    transform = eval_transform("resnet50", size=64)
    expected = transform(image)
    np.testing.assert_array_equal(transform(np.asarray(image)), expected)
    np.testing.assert_array_equal(transform(np.asarray(image).astype("float32")), expected)
    np.testing.assert_array_equal(transform(image.convert("RGBA")), expected)
    gray = image.convert("L")
    np.testing.assert_array_equal(transform(np.asarray(gray)), transform(gray))


def test_crop_and_interpolation_can_be_overridden():
    image = photo()
    transform = eval_transform("xception", size=64, crop_pct=1.0, interpolation="bilinear")
    np.testing.assert_array_equal(transform(image), expected_pixels(image, 64, 1.0, Image.BILINEAR))


def test_a_trained_classifier_sees_the_whole_image_as_in_training():
    image = photo()
    expected = np.asarray(image.resize((64, 64), Image.BILINEAR), dtype="float32")
    np.testing.assert_array_equal(trained_transform(64)(image), expected)
    assert trained_transform(64).preprocessing == "none"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"crop_pct": 1.5}, "crop_pct=1.5: expected a fraction in [0.5, 1]"),
        ({"crop_pct": 0}, "crop_pct=0: expected a fraction in [0.5, 1]"),
        # the shorter side would be resized to 224 million pixels: refused, not a MemoryError
        ({"crop_pct": 1e-6}, "crop_pct=1e-06: expected a fraction in [0.5, 1]"),
        ({"interpolation": "cubic"}, "interpolation='cubic': expected one of"),
        ({"size": 0}, "size=0: expected an integer from 1 to 2048"),
        ({"size": 10**6}, "size=1000000: expected an integer from 1 to 2048"),
    ],
)
def test_bad_arguments_are_one_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        eval_transform("resnet50", **kwargs)
