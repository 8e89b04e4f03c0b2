"""How an image reaches a model: each model's evaluation transform, and its scaling in the graph.

    transform = eval_transform("resnet50")   # shorter side to 256, central 224x224, bicubic
    pixels = transform(image)                # a PIL image or an array: float32 (224, 224, 3), 0-255
    x = transform.preprocess(np.stack([pixels]))   # the model's own preprocess_input

The transform is the one definition of a model's evaluation pipeline: `keras-nets predict`,
`keras-nets evaluate` and `keras_nets.evaluate` all use it, with the `crop_pct` and
`interpolation` of the model's registry config (the values Keras' published accuracies were
measured with, see keras_nets.registry). It stops before `preprocess_input`, on purpose: a model
built with `create_model(..., include_preprocessing=True)`, and every classifier trained by
keras-nets, takes these 0-255 RGB pixels as they are; `transform.preprocess` applies the rest.

What `create_model(name, include_preprocessing=True)` builds, the model with `preprocess_input`
as standard Keras layers in front, is `keras_nets.core.factory.with_preprocessing` (its layers:
`keras_nets.images.layers`).
"""

import dataclasses
import io

import numpy as np
from PIL import Image

from keras_nets.images.files import ImageError, decode_photo, read_photo, to_rgb

RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
# Input heights and widths above this do not fit a batch in memory on any machine here: the limit
# of eval_transform, keras-nets train, predict, evaluate and explain (--size).
MAX_IMAGE_SIZE = 2048
MAX_SIZE = MAX_IMAGE_SIZE  # its name before issue 24
# The centre crop keeps at least this fraction: below it, the shorter side is resized to more than
# twice the input size before the crop (crop_pct 1e-6 would ask for 224 million pixels a side).
MIN_CROP_PCT = 0.5
# An image resized (shorter side to `resize_size`, aspect ratio kept) to more pixels than this is
# refused: a 1x40000 PNG of 242 bytes would become 256x10240000, 7.9 GB of RGB, before the crop.
# 2**24 pixels (48 MB of RGB) still take panoramas up to 256:1 at a shorter side of 256.
MAX_RESIZED_PIXELS = 2**24
# What `keras-nets train` feeds a classifier (`training.read_for_training`, this module's
# `trained_transform`): the whole image resized to the input size, bilinearly, no crop. Its
# predict and evaluate read images through the very same function.
TRAINED_INTERPOLATION = "bilinear"


@dataclasses.dataclass(frozen=True)
class EvalTransform:
    """One evaluation pipeline: resize, centre crop, then (separately) the model's scaling.

    Attributes:
      size: the model's input height and width (square).
      crop_pct: the shorter side is resized to round(size / crop_pct), then the central
        size x size square is cropped; None resizes the whole image to size x size instead
        (aspect ratio not kept), as training on image folders does.
      interpolation: "bicubic", "bilinear", "nearest" or "lanczos" (PIL's filters).
      preprocessing: the `preprocess_input` mode of `preprocess`: "tf", "caffe", "torch", or
        "none" for a model that scales its 0-255 input itself.
    """

    size: int
    crop_pct: float
    interpolation: str
    preprocessing: str

    def __post_init__(self):
        if not (isinstance(self.size, (int, np.integer)) and 1 <= self.size <= MAX_IMAGE_SIZE):
            raise ValueError(f"size={self.size!r}: expected an integer from 1 to {MAX_IMAGE_SIZE}")
        crop_ok = isinstance(self.crop_pct, (int, float)) and MIN_CROP_PCT <= self.crop_pct <= 1
        if self.crop_pct is not None and not crop_ok:
            raise ValueError(
                f"crop_pct={self.crop_pct!r}: expected a fraction in [{MIN_CROP_PCT}, 1]"
            )
        if self.interpolation not in RESAMPLING:
            raise ValueError(
                f"interpolation={self.interpolation!r}: expected one of {tuple(RESAMPLING)}"
            )

    @property
    def resize_size(self):
        """The length the shorter side is resized to before the crop (None: no crop)."""
        return None if self.crop_pct is None else round(self.size / self.crop_pct)

    @property
    def decode_size(self):
        """(width, height) a photo must keep at least when decoded at a reduced scale: what
        the resize needs, so that it still only shrinks (the shorter side to `resize_size`, or
        with no crop both sides to `size`). Square, hence the same in every EXIF orientation."""
        side = self.size if self.crop_pct is None else self.resize_size
        return side, side

    def read(self, source):
        """The model's input pixels for a file path or an http(s) URL: float32 (size, size, 3).

        JPEGs are decoded at the smallest scale (1/2, 1/4, 1/8 a side) that keeps
        `decode_size` (`files.read_photo`, PIL's `Image.draft`), and resized from the part of
        the decoded image that holds the photo: the geometry of the full-size pipeline
        (`__call__(read_image(source))`), with pixels within 1.5 of its own on 0-255 on average
        and 14 at the 99th percentile, about what swapping bicubic and bilinear changes
        (tests/images/test_draft_decoding.py). A 1600x1200 photo for a 224-px model (shorter
        side to 256) is decoded at 400x300, 4-7x faster than in full; 640x480 is decoded in
        full (a half would leave 240 < 256). Other formats are decoded in full. An image that
        cannot be read, or whose resize would be absurd (1x40000, see `__call__`), is an
        ImageError naming `source`.
        """
        image, box = read_photo(source, draft_to=self.decode_size)
        return self._resized_photo(image, box, source)

    def decode(self, data, name):
        """`read` on an image file's bytes (as Spark's `binaryFile` and Ray's
        `read_binary_files` give them): the same pixels as `read` of the file. `name` names the
        image in an ImageError."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageError(f"{name}: no image bytes ({type(data).__name__})")
        image, box = decode_photo(io.BytesIO(data), name, draft_to=self.decode_size)
        return self._resized_photo(image, box, name)

    def _resized_photo(self, image, box, name):
        try:
            return self.resized(image, box)
        except ImageError as error:
            raise ImageError(f"{name}: {error}") from None

    def __call__(self, image):
        """The model's input pixels for one image: float32 (size, size, 3), RGB 0-255.

        Args:
          image: a PIL image of any mode, or an array (height, width[, 3]) of 0-255 values.

        An image whose shorter-side resize would pass MAX_RESIZED_PIXELS (an absurd aspect
        ratio, 1x40000 say) is an ImageError, before anything is resized.
        """
        return self.resized(to_rgb(as_pil(image)))

    def resized(self, image, box=None):
        """`__call__` on an RGB PIL image of which `box` (left, top, right, bottom; default:
        all of it) holds the photo, as `files.read_photo` gives them."""
        box = box or (0, 0, *image.size)
        resample = RESAMPLING[self.interpolation]
        if self.crop_pct is None:
            image = image.resize((self.size, self.size), resample, box=box)
        else:
            # the photo's proportions, exact whatever the scale decoded (a power of 2)
            photo = (box[2] - box[0], box[3] - box[1])
            resized = shorter_side_size(photo, self.resize_size)
            if resized[0] * resized[1] > MAX_RESIZED_PIXELS:
                raise ImageError(
                    f"{image.width}x{image.height} pixels: its shorter side resized to "
                    f"{self.resize_size} would make {resized[0]}x{resized[1]}, more than "
                    f"{MAX_RESIZED_PIXELS} pixels (aspect ratio too far from square)"
                )
            image = image.resize(resized, resample, box=box)
            width, height = image.size
            left, top = (width - self.size) // 2, (height - self.size) // 2
            image = image.crop((left, top, left + self.size, top + self.size))
        return np.asarray(image, dtype="float32")

    def preprocess(self, batch):
        """The model's `preprocess_input` on a batch of transformed images (a new array)."""
        batch = np.asarray(batch, dtype="float32")
        if self.preprocessing == "none":
            return batch
        from keras_nets.core import imagenet  # imports Keras

        return imagenet.preprocess_input(batch, mode=self.preprocessing)

    def describe(self):
        """The pipeline as a JSON-ready dict (what `keras-nets evaluate --json` records)."""
        return {
            "size": int(self.size),
            "resize_shorter_side_to": self.resize_size,
            "crop_pct": self.crop_pct,
            "interpolation": self.interpolation,
            "preprocessing": self.preprocessing,
        }


def eval_transform(name, size=None, crop_pct=None, interpolation=None):
    """The evaluation pipeline of the registry model `name`, as its config states it.

    Args:
      name: a registry name (e.g. "resnet50") or a `ModelConfig`.
      size: the input size (default: the config's `default_size`), e.g. 96 for a MobileNetV2
        built at 96x96.
      crop_pct, interpolation: override the config's values.

    Returns:
      An `EvalTransform`: call it on a PIL image or an array for float32 (size, size, 3) pixels
      in 0-255 RGB, before `preprocess_input` (its `.preprocess` applies that to a batch).
    """
    from keras_nets.core import factory, registry

    config = name if isinstance(name, registry.ModelConfig) else factory.get_config(name)
    return EvalTransform(
        size=config.default_size if size is None else size,
        crop_pct=config.crop_pct if crop_pct is None else crop_pct,
        interpolation=interpolation or config.interpolation,
        preprocessing=config.preprocessing,
    )


def trained_transform(size, crop_pct=None):
    """The pipeline of a classifier trained by `keras-nets train`: what it was trained on (the
    whole image resized bilinearly, no crop) unless `crop_pct` asks for a centre crop; no
    scaling, since the classifier does its own."""
    return EvalTransform(size, crop_pct, TRAINED_INTERPOLATION, "none")


def shorter_side_size(size, shorter):
    """(width, height) with the shorter side `shorter` and the aspect ratio kept (rounded)."""
    width, height = size
    if width <= height:
        return shorter, max(shorter, round(height * shorter / width))
    return max(shorter, round(width * shorter / height)), shorter


def as_pil(image):
    """A PIL image from a PIL image or an array of 0-255 values (grayscale or RGB)."""
    if isinstance(image, Image.Image):
        return image
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3)):
        raise ValueError(
            f"image of shape {array.shape}: expected (height, width) or (height, width, 3)"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array.astype("float64")), 0, 255).astype("uint8")
    return Image.fromarray(array)
