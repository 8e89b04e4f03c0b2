"""The dataset of a training run: DATA_DIR's `train/<class>/*` and `validation/<class>/*`, checked
completely before anything is built (`check_dataset`), listed (`split_files`) and read in
batches (`labelled_images`) exactly as `keras-nets predict` reads images for a trained classifier
(`read_for_training`).
"""

import functools
import math
import os
import pathlib
import threading

from keras_nets.images.files import IMAGE_EXTENSIONS, DatasetError, walk_images

# Keras (and so TensorFlow) is imported when training starts, not when `keras-nets` starts.
SPLITS = ("train", "validation")
MAX_LISTED = 10  # unreadable files named in a DatasetError, at most


def split_files(data_dir, split, class_names):
    """(paths, labels) of DATA_DIR/split: each class folder's images (hidden ones included, as
    `check_dataset` checks them), the label the index of its class in `class_names`."""
    paths, labels = [], []
    for label, name in enumerate(class_names):
        images = list(walk_images(pathlib.Path(data_dir, split, name), include_hidden=True))
        paths += images
        labels += [label] * len(images)
    return paths, labels


def read_for_training(path, size):
    """The pixels a classifier trained at `size` sees for an image file, in training and at
    predict/evaluate time alike: `Classifier.read` of a trained model does exactly this
    (`image_files.read_image`: EXIF orientation applied, transparency on white; then
    `preprocessing.trained_transform`: the whole image resized, bilinear, antialiased)."""
    from keras_nets.images.files import read_image
    from keras_nets.images.transforms import trained_transform

    return trained_transform(size)(read_image(path))


def labelled_images(
    paths, labels, *, size, batch_size, shuffle, seed, augmentation=None, workers=None
):
    """A `keras.utils.PyDataset` of (images, labels) batches: float32 (n, size, size, 3) 0-255
    pixels read by `read_for_training`, int32 labels. With `shuffle`, the order is a permutation
    drawn from `seed`, drawn again after every epoch (so the same seed gives the same run).
    Images are decoded on `workers` threads (default: up to 4, one per CPU); batches come in
    order whatever the number of threads. `augmentation`: Keras preprocessing layers applied, in
    training mode, to each batch after decoding (one thread at a time: they share a seed
    generator). Works with `model.fit` on every Keras backend."""
    return labelled_images_class()(
        paths, labels, size, batch_size, shuffle, seed, augmentation, workers
    )


@functools.cache
def labelled_images_class():
    """`LabelledImages`, a keras.utils.PyDataset, defined on first use (it imports Keras)."""
    import keras
    import numpy as np

    class LabelledImages(keras.utils.PyDataset):
        def __init__(self, paths, labels, size, batch_size, shuffle, seed, augmentation, workers):
            workers = workers or min(4, os.cpu_count() or 1)
            super().__init__(workers=workers, use_multiprocessing=False)
            self.paths, self.labels = list(paths), np.asarray(labels, dtype="int32")
            self.size, self.batch_size, self.shuffle = size, batch_size, shuffle
            self.random = np.random.default_rng(seed)
            self.order = np.arange(len(self.paths))
            self.augmentation, self.augmenting = augmentation or [], threading.Lock()
            if shuffle:
                self.random.shuffle(self.order)

        def __len__(self):
            return math.ceil(len(self.paths) / self.batch_size)

        def __getitem__(self, index):
            chosen = self.order[index * self.batch_size : (index + 1) * self.batch_size]
            images = np.stack([read_for_training(self.paths[i], self.size) for i in chosen])
            if self.augmentation:
                with self.augmenting:
                    for layer in self.augmentation:
                        images = layer(images, training=True)
                    images = keras.ops.convert_to_numpy(images)
            return images, self.labels[chosen]

        def on_epoch_end(self):
            if self.shuffle:
                self.random.shuffle(self.order)

    return LabelledImages


def check_dataset(data_dir, classes):
    """The class names (folder names, in label order), or a DatasetError for a bad DATA_DIR.

    Checks that both splits exist and hold the same `classes` class folders, that every class
    has images, and that every image is a regular file that decodes the way the training
    pipeline will decode it. The files checked are those training reads (`split_files`: hidden
    files included, as `keras.utils.image_dataset_from_directory` takes them; hidden class
    folders excluded).

    Args:
      data_dir: folder with `train/<class>/*` and `validation/<class>/*`.
      classes: the number of class folders expected.
    """
    data_dir = pathlib.Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: no such directory")
    class_names, files, unreadable = None, [], []

    def unlisted(folder, message):  # training would fail on it: listed in the DatasetError
        unreadable.append(f"  {message.removesuffix('; skipped')}")

    for split in SPLITS:
        split_dir = data_dir / split
        if not split_dir.is_dir():
            raise DatasetError(
                f"{split_dir}: missing; expected {data_dir}/train/<class>/* and "
                f"{data_dir}/validation/<class>/*"
            )
        try:
            names = sorted(
                p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
            )
        except OSError as error:
            raise DatasetError(f"{split_dir}: cannot be listed ({error.strerror})") from None
        if not names:
            raise DatasetError(f"{split_dir} is empty: expected one folder of images per class")
        if len(names) != classes:
            raise DatasetError(
                f"{split_dir} has {len(names)} class folders ({', '.join(names)}) but --classes "
                f"is {classes}"
            )
        if class_names is not None and names != class_names:
            raise DatasetError(
                f"{split_dir} has class folders {names}, but {data_dir / 'train'} has {class_names}"
            )
        class_names = names
        for name in names:
            before = len(unreadable)
            images = list(walk_images(split_dir / name, include_hidden=True, on_error=unlisted))
            if not images and len(unreadable) == before:  # (an unlisted folder is named below)
                raise DatasetError(
                    f"{split_dir / name} has no images (expected files ending in "
                    f"{', '.join(IMAGE_EXTENSIONS)})"
                )
            files.extend(images)
    folders = len(unreadable)
    unreadable += [f"  {path}: {reason}" for path, reason in map(decode_problem, files) if reason]
    if unreadable:
        more = len(unreadable) - MAX_LISTED
        unlisted = f"{folders} folder(s) cannot be listed and " if folders else ""
        raise DatasetError(
            f"{unlisted}{len(unreadable) - folders} image(s) cannot be decoded; fix or remove "
            "them:\n"
            + "\n".join(unreadable[:MAX_LISTED])
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
    return class_names


def decode_problem(path):
    """(path, None) if the image decodes as training will read it (`read_for_training`'s
    `image_files.load_rgb`), else (path, the reason)."""
    from keras_nets.images.files import ImageError, load_rgb

    try:
        load_rgb(path)
    except ImageError as error:
        return path, str(error).removeprefix(f"{path}: ")
    return path, None
