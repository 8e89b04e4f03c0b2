"""Reading photos the way people have them: any PIL mode, any orientation, some of them broken.

`load_rgb` turns a file into an RGB uint8 array of a given size: grayscale, palette, RGBA, CMYK
and 16-bit images are converted to 8-bit RGB (transparent pixels are put on white), and the EXIF
orientation tag is applied, so a phone photo taken upright is predicted upright. A file that is
not an image, or is truncated, raises `ImageError` naming the file.
"""

import os
import pathlib

import numpy as np
from PIL import Image, ImageOps

# What `keras.utils.image_dataset_from_directory` reads; `keras-nets predict` walks for the same.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


class ImageError(ValueError):
    """A file that cannot be read as an image; the message starts with the file's path."""


def load_rgb(path, size=None):
    """Reads `path` as an RGB image, resized to `size` = (height, width) when given.

    Returns:
      A uint8 array of shape (height, width, 3).
    """
    try:
        with Image.open(path) as image:
            image.load()  # decodes everything now: a truncated file fails here, not later
            image = ImageOps.exif_transpose(image)
            image = to_rgb(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"{path}: not a readable image ({error})") from None
    if size is not None:
        height, width = size
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype="uint8")


def to_rgb(image):
    """An 8-bit RGB copy of a PIL image of any mode."""
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):  # 16-bit PNGs open in these modes
        pixels = np.asarray(image, dtype="float64") / 257.0
        image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype("uint8"), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype("uint8"), "L")
    if (image.mode == "P" and "transparency" in image.info) or image.mode in ("PA", "LA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def find_images(inputs):
    """The image files named by `inputs`: files as given, directories walked in sorted order.

    Inside a directory only files with an image extension are taken (hidden files skipped); a file
    named explicitly is always taken, so that a broken one gets reported rather than ignored.
    Raises FileNotFoundError for an input that does not exist.
    """
    paths = []
    for item in inputs:
        item = pathlib.Path(item)
        if item.is_dir():
            for root, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                paths.extend(
                    pathlib.Path(root, name)
                    for name in sorted(files)
                    if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
                )
        elif item.exists():
            paths.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or directory")
    return paths
