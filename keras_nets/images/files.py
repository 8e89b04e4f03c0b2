"""Reading photos the way people have them: any PIL mode, any orientation, some of them broken.

`load_rgb` turns a file into an RGB uint8 array of a given size: grayscale, palette, RGBA, CMYK
and 16-bit images are converted to 8-bit RGB (transparent pixels are put on white), and the EXIF
orientation tag is applied, so a phone photo taken upright is predicted upright. A file that is
not an image, or is truncated, raises `ImageError` naming the file. A path that is not a regular
file (a FIFO, a socket, a device) is an `ImageError` too and is never opened: reading a FIFO
blocks forever. `read_image` also takes http(s) URLs, downloaded into memory with a size limit.

`read_photo` reads a JPEG at a reduced scale where the model needs fewer pixels (PIL's
`Image.draft`: libjpeg decodes 1/2, 1/4 or 1/8 of each side, much faster), and says which part of
the decoded image holds the photo, so that resizing gives the full-size pipeline's geometry
(`EvalTransform.read` is its user).

`walk_images` is the one folder walker, with an explicit rule for hidden files.
"""

import io
import os
import pathlib
import urllib.error
import urllib.request

import numpy as np
from PIL import ExifTags, Image, ImageOps

from keras_nets.core.safe_files import not_a_regular_file

# What `keras.utils.image_dataset_from_directory` reads; `keras-nets predict` walks for the same.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
MAX_DOWNLOAD_BYTES = 64 * 2**20  # an image URL serving more than this is refused
DOWNLOAD_TIMEOUT = 30  # seconds without data before a download is given up
URL_SCHEMES = ("http://", "https://")
# Beside a model trained on a folder of class folders (keras-nets train writes it, predict,
# evaluate and explain read it): the class names, in the model's output order, as a JSON list.
CLASS_NAMES_FILE = "class_names.json"


class ImageError(ValueError):
    """A file that cannot be read as an image; the message starts with the file's path."""


class DatasetError(ValueError):
    """A folder that is not a dataset of images the task can use (training's DATA_DIR,
    evaluation's DATA); the message names it and says why."""


def load_rgb(path, size=None):
    """Reads `path` as an RGB image, resized to `size` = (height, width) when given.

    Args:
      path: an image file; anything but a regular file is refused without being opened.
      size: (height, width) to resize to, or None for the stored size.

    Returns:
      A uint8 array of shape (height, width, 3).
    """
    problem = not_a_regular_file(path)
    if problem:
        raise ImageError(f"{path}: {problem}")
    return decode_rgb(path, path, size)


def read_image(source, size=None):
    """`load_rgb` for a path, or for an http(s) URL downloaded into memory (nothing written).

    A URL that fails (HTTP error, no connection, more than MAX_DOWNLOAD_BYTES) is an ImageError
    naming the URL.
    """
    if not is_url(source):
        return load_rgb(source, size)
    return decode_rgb(io.BytesIO(download(source)), source, size)


def read_photo(source, draft_to=None):
    """(image, box): a file path's or an http(s) URL's photo as an RGB PIL image, EXIF
    orientation applied, decoded at the smallest JPEG scale keeping it at least `draft_to`.

    Args:
      source: as `read_image` takes it (anything but a regular file is refused unopened).
      draft_to: (width, height) that both sides of the decoded image must keep at least, in
        the stored orientation; a square one is the same in every orientation. None decodes
        at full size. Images other than JPEG are always decoded at full size.

    Returns:
      The image, and the box (left, top, right, bottom; floats) of it that holds the whole
      photo: libjpeg rounds a reduced side up, so a 1601-pixel side decoded at 1/8 is 201
      pixels of which 200.125 are photo. `image.resize(size, box=box)` then samples the same
      points as resizing the full-size photo (`Image.thumbnail` does the same).
    """
    if not is_url(source):
        problem = not_a_regular_file(source)
        if problem:
            raise ImageError(f"{source}: {problem}")
        return decode_photo(source, source, draft_to)
    return decode_photo(io.BytesIO(download(source)), source, draft_to)


def is_url(source):
    return isinstance(source, str) and source.lower().startswith(URL_SCHEMES)


def download(url, max_bytes=None):
    """The bytes at an http(s) URL; an ImageError naming it if they cannot be had."""
    max_bytes = MAX_DOWNLOAD_BYTES if max_bytes is None else max_bytes
    too_large = f"{url}: larger than {max_bytes} bytes; not downloaded"
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise ImageError(too_large)
            data = response.read(max_bytes + 1)
    except urllib.error.HTTPError as error:
        raise ImageError(f"{url}: HTTP error {error.code} ({error.reason})") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        if isinstance(error, ImageError):
            raise
        reason = getattr(error, "reason", error)
        raise ImageError(f"{url}: cannot be downloaded ({reason})") from None
    if len(data) > max_bytes:
        raise ImageError(too_large)
    return data


def decode_rgb(file, name, size):
    """`load_rgb` on an open binary file or a path already known to be a regular file."""
    image, _ = decode_photo(file, name)
    if size is not None:
        height, width = size
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype="uint8")


def decode_photo(file, name, draft_to=None):
    """`read_photo` on an open binary file or a path already known to be a regular file."""
    try:
        with Image.open(file) as image:
            box = (0, 0, *image.size)
            if draft_to is not None:
                # None for all but a single-scan baseline or progressive JPEG: decoded in full
                drafted = image.draft(image.mode, tuple(draft_to))
                box = drafted[1] if drafted else box
            image.load()  # decodes everything now: a truncated file fails here, not later
            transpose = EXIF_TRANSPOSES.get(image.getexif().get(ExifTags.Base.Orientation, 1))
            box = transposed_box(box, image.size, transpose)
            image = ImageOps.exif_transpose(image)
            image = to_rgb(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"{name}: not a readable image ({error})") from None
    return image, box


# What `ImageOps.exif_transpose` does for each EXIF orientation (its own table).
EXIF_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def transposed_box(box, size, transpose):
    """`box` of an image of `size` = (width, height), where it lands once the image is
    transposed by `transpose` (None: left as it is)."""
    if transpose is None:
        return box
    width, height = size
    where = {  # (x, y) -> where the point goes
        Image.Transpose.FLIP_LEFT_RIGHT: lambda x, y: (width - x, y),
        Image.Transpose.ROTATE_180: lambda x, y: (width - x, height - y),
        Image.Transpose.FLIP_TOP_BOTTOM: lambda x, y: (x, height - y),
        Image.Transpose.TRANSPOSE: lambda x, y: (y, x),
        Image.Transpose.ROTATE_270: lambda x, y: (height - y, x),  # clockwise
        Image.Transpose.TRANSVERSE: lambda x, y: (height - y, width - x),
        Image.Transpose.ROTATE_90: lambda x, y: (y, width - x),  # counter-clockwise
    }[transpose]
    (x0, y0), (x1, y1) = where(box[0], box[1]), where(box[2], box[3])
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


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


def walk_images(folder, include_hidden=False, on_error=None):
    """Yields the files with an image extension under `folder`, one directory listing at a time.

    Args:
      folder: the directory to walk (symbolic links to directories are not followed).
      include_hidden: False (what `keras-nets predict` does) skips files and folders whose name
        starts with "."; True takes them like any other, as
        `keras.utils.image_dataset_from_directory` does inside a class folder, so that
        `keras-nets train` checks exactly the files training will read.
      on_error: called with (path, message) for each directory that cannot be listed (no
        permission, a path longer than the system allows, removed meanwhile); the walk goes on
        with the others. Default: a `UnlistedFolderWarning` per directory.

    Within a directory, names are sorted and files come before subdirectories, so two walks over
    the same folder yield the same order; only one directory's names are held at a time, so a
    folder of any size is walked in little memory. Special files (FIFOs, ...) with an image
    extension are yielded too: `load_rgb` reports them.
    """
    on_error = on_error or warn_unlisted
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        on_error(pathlib.Path(folder), unlisted_message(folder, error))
        return
    subfolders = []
    for entry in entries:
        if not include_hidden and entry.name.startswith("."):
            continue
        if is_folder(entry):
            subfolders.append(entry.path)
        elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
            yield pathlib.Path(entry.path)
    del entries  # only this directory's subfolder names stay in memory while walking them
    for subfolder in subfolders:
        yield from walk_images(subfolder, include_hidden, on_error)


class UnlistedFolderWarning(UserWarning):
    """A folder met while walking could not be listed; the walk went on without it."""


def unlisted_message(folder, error):
    """ "FOLDER: cannot be listed (REASON); skipped", the line for a folder a walk cannot read."""
    return f"{folder}: cannot be listed ({error.strerror or error}); skipped"


def warn_unlisted(path, message):
    import warnings

    warnings.warn(message, UnlistedFolderWarning, stacklevel=3)


def is_folder(entry):
    """True for a directory entry that is a directory (not followed through a symbolic link);
    an entry that cannot be examined is not one (a file of its name is then reported)."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def find_images(inputs, include_hidden=False, on_error=None):
    """The images named by `inputs`: files and URLs as given, directories walked.

    Args:
      inputs: paths of files or directories, or http(s) URLs.
      include_hidden: for directories, see `walk_images` (default: hidden files skipped).
      on_error: for directories, see `walk_images`: called with (folder, message) for each one
        that cannot be listed, and the others are walked.

    Returns:
      (images, missing): the files (and URLs) to read, in order, and the inputs that do not
      exist. A file named explicitly is always taken, so that a broken one gets reported rather
      than ignored.
    """
    images, missing = [], []
    for item in inputs:
        if is_url(item):
            images.append(item)
        elif os.path.isdir(item):
            images.extend(walk_images(item, include_hidden, on_error))
        elif os.path.lexists(item):
            images.append(pathlib.Path(item))
        else:
            missing.append(item)
    return images, missing


# Chelsea the cat, scikit-image's sample photo (CC0, by Stéfan van der Walt), shipped as a JPEG
# so that the examples have a real photo to show without a network.
SAMPLE_PHOTO = pathlib.Path(__file__).parents[1] / "data" / "chelsea.jpg"


def photo_or_sample(url, name):
    """The path of the photo at `url`, downloaded once into Keras' cache as `name`; where it
    cannot be downloaded (offline, say), SAMPLE_PHOTO instead, and one line says so."""
    import keras  # here: reading images needs no Keras

    try:
        return keras.utils.get_file(name, url)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(
            f"{url} cannot be downloaded ({reason}); using the photo shipped with keras-nets, "
            f"{SAMPLE_PHOTO} (a cat)"
        )
        return str(SAMPLE_PHOTO)
