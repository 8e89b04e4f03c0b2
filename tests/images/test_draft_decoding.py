"""JPEGs decoded at a reduced scale (`EvalTransform.read`, PIL's `Image.draft`) give the evaluation
pipeline's pixels, within a stated tolerance.

The pipeline's own definition is `EvalTransform.__call__` on the full-size photo (`read_image`).
Reading a draft changes the pixels a little, since libjpeg's reduced IDCT is a box-like filter
where PIL's resize would have used its own. The tolerance is what the resize itself already
leaves open: swapping its filter (bicubic for bilinear, or back) changes the same photos by 0.8 to
1.4 on 0-255 on average, 4 to 10 at the 99th percentile, up to 33 at the worst pixel. Measured
here (PIL 13, on scikit-image's chelsea, astronaut and coffee upscaled to 1600x1200 and
1609x1203, and at 640x480), the draft's differences are 0.4 to 1.34 on average and at most 12 at
the 99th percentile (the largest where the draft keeps barely more than the target: 640x480
decoded at 320x240 for a 224 crop of the whole shorter side), 35 at the worst pixel. Asserted,
with margin: mean <= 1.5, 99th percentile <= 14, and the mean at most 1.25 times what swapping
the filter changes on the same photo.
"""

import os

import numpy as np
import pytest
import skimage.data
from PIL import Image

from keras_nets.images.files import SAMPLE_PHOTO, ImageError, read_image, read_photo
from keras_nets.images.transforms import EvalTransform

MEAN_TOLERANCE = 1.5  # 0-255 units, averaged over the size x size x 3 values
P99_TOLERANCE = 14  # the 99th percentile of the absolute differences
FILTER_SWAP_RATIO = 1.25  # the draft's mean difference / swapping bicubic and bilinear's
PIPELINES = {
    "shorter side 256, crop 224, bicubic": EvalTransform(224, 0.875, "bicubic", "torch"),
    "whole image to 224, bilinear (trained)": EvalTransform(224, None, "bilinear", "none"),
    "shorter side 224, crop 224, bicubic": EvalTransform(224, 1.0, "bicubic", "torch"),
}
PHOTO_SIZES = [(1600, 1200), (1609, 1203), (640, 480)]  # 1609x1203: a side JPEG scales unevenly
ORIENTATIONS = range(1, 9)  # EXIF: 1 upright, 2-8 the flips and rotations a camera writes


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """{(name, width, height): path} of real photos saved as JPEG (quality 90) at each size."""
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("chelsea", "astronaut", "coffee"):
        photo = Image.fromarray(getattr(skimage.data, name)())
        for width, height in PHOTO_SIZES:
            path = folder / f"{name}_{width}x{height}.jpg"
            photo.resize((width, height), Image.Resampling.BICUBIC).save(path, quality=90)
            paths[name, width, height] = path
    return paths


def differences(first, second):
    """(mean, 99th percentile, max) of the absolute differences of two 0-255 arrays."""
    difference = np.abs(np.asarray(first, "float64") - np.asarray(second, "float64"))
    return difference.mean(), np.percentile(difference, 99), difference.max()


def with_other_filter(transform):
    other = "bilinear" if transform.interpolation == "bicubic" else "bicubic"
    return EvalTransform(transform.size, transform.crop_pct, other, transform.preprocessing)


def assert_within_tolerance(transform, path):
    full_size = read_image(path)
    drafted = transform.read(path)
    assert drafted.shape == drafted.shape == (transform.size, transform.size, 3)
    mean, p99, worst = differences(drafted, transform(full_size))
    filter_swap, _, _ = differences(with_other_filter(transform)(full_size), transform(full_size))
    where = f"{os.path.basename(path)}: draft differs by {mean:.2f} on average, {p99:.0f} at p99"
    assert mean <= MEAN_TOLERANCE, where
    assert p99 <= P99_TOLERANCE, where
    assert mean <= FILTER_SWAP_RATIO * filter_swap, f"{where}; the other filter {filter_swap:.2f}"


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("width, height", PHOTO_SIZES)
@pytest.mark.parametrize("name", ["chelsea", "astronaut", "coffee"])
def test_draft_gives_the_pipelines_pixels(photos, name, width, height, pipeline):
    assert_within_tolerance(PIPELINES[pipeline], photos[name, width, height])


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_draft_of_rotated_photos_gives_the_pipelines_pixels(tmp_path, orientation, pipeline):
    """A camera's rotated JPEG, of sides that do not divide by 8: the part of the draft that
    holds the photo moves with the rotation (a wrong box shifts the whole image)."""
    photo = Image.fromarray(skimage.data.astronaut()).resize((1609, 1203))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"orientation_{orientation}.jpg"
    photo.save(path, quality=90, exif=exif)
    assert_within_tolerance(PIPELINES[pipeline], path)


def test_the_sample_photo_is_not_drafted():
    """451x300: a half would leave 150 pixels of the 256 the resize needs."""
    transform = PIPELINES["shorter side 256, crop 224, bicubic"]
    assert np.array_equal(transform.read(SAMPLE_PHOTO), transform(read_image(SAMPLE_PHOTO)))


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize(
    "width, height", [(4000, 257), (257, 4000), (2049, 1025), (1023, 2047), (8191, 4097), (600, 7)]
)
@pytest.mark.parametrize(
    "transform",
    [*PIPELINES.values(), EvalTransform(96, 0.875, "bicubic", "tf")],
    ids=[*PIPELINES, "shorter side 110, crop 96"],
)
def test_draft_covers_the_resize_target(tmp_path, transform, width, height, orientation):
    """The decoded image keeps what the resize needs (shorter side >= resize_size, or both sides
    >= size with no crop) in every orientation, at the smallest scale that does."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (width, height), (120, 60, 30)).save(path, exif=exif)
    image, box = read_photo(path, draft_to=transform.decode_size)
    upright = (height, width) if orientation >= 5 else (width, height)
    scale = upright[0] / (box[2] - box[0])
    assert scale in (1, 2, 4, 8)
    assert (box[3] - box[1]) * scale == upright[1]  # the box is the photo at that scale
    assert 0 <= box[0] < 1 and 0 <= box[1] < 1 and image.size == (np.ceil(box[2]), np.ceil(box[3]))
    needed = transform.resize_size or transform.size
    decoded = min(image.size) if transform.crop_pct else image.size
    assert scale == 1 or np.all(np.asarray(decoded) >= needed)  # never below the target
    smaller = np.floor(np.asarray(upright) / (2 * scale))  # what the next scale would decode
    assert scale == 8 or np.any((min(smaller) if transform.crop_pct else smaller) < needed)


def test_a_png_goes_through_unchanged(tmp_path):
    path = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).resize((1600, 1200)).save(path)
    image, box = read_photo(path, draft_to=(256, 256))
    assert image.size == (1600, 1200) and box == (0, 0, 1600, 1200)
    for transform in PIPELINES.values():
        assert np.array_equal(transform.read(path), transform(read_image(path)))


def test_reading_refuses_what_read_image_refuses(tmp_path):
    transform = PIPELINES["shorter side 256, crop 224, bicubic"]
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)  # opening it would block forever: refused unopened
    with pytest.raises(ImageError, match="^" + str(fifo)):
        transform.read(fifo)
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(ImageError, match=f"^{text}: not a readable image"):
        transform.read(text)
    panorama = tmp_path / "panorama.png"
    Image.new("RGB", (40000, 1)).save(panorama)
    with pytest.raises(ImageError, match=f"^{panorama}: 40000x1 pixels"):
        transform.read(panorama)
