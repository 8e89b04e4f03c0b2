"""Training a classifier on folders of images, safely: what `keras-nets train` does, for Python.

    from keras_nets import training
    training.train_classifier("flowers/", "run/", base="mobilenet_v2", classes=5, epochs=10)

DATA_DIR holds `train/<class>/*` and `validation/<class>/*` (`check_dataset` reads it completely
before anything is built). The classifier is `finetune.classifier_to_train`. The run is written
to OUTPUT so that nothing is lost and nothing is half-written:

- an OUTPUT that holds a run (any of RUN_FILES) is refused unless `overwrite=True`, and then only
  those files are replaced; OUTPUT naming a file is refused;
- `class_names.json` is written before the first epoch; with `overwrite`, the earlier run's files
  are removed first (its models before its labels), so labels never sit beside another run's
  models;
- every file is written under a temporary name in OUTPUT and renamed when complete
  (`atomic_path`), `best.keras` included (`BestCheckpoint`);

so an interruption at any moment leaves either the earlier complete run or a consistent new one:
each `.keras` there loads and predicts the classes of the `class_names.json` beside it.
"""

import contextlib
import functools
import json
import math
import os
import pathlib
import time

from keras_nets.image_files import IMAGE_EXTENSIONS, not_a_regular_file, walk_images

# Keras (and so TensorFlow) is imported when training starts, not when `keras-nets` starts.
SPLITS = ("train", "validation")
CLASS_NAMES_FILE = "class_names.json"  # = finetune.CLASS_NAMES_FILE
RUN_FILES = ("model.keras", "best.keras", "history.json", CLASS_NAMES_FILE)
MAX_LISTED = 10  # unreadable files named in a DatasetError, at most
MAX_IMAGE_SIZE = 2048  # larger inputs do not fit a training batch in memory on any machine here
# Tests only: "POINT:MARKER" pauses a run at POINT after creating the file MARKER, so that a test
# can interrupt it there deterministically (see tests/test_train_misuse.py).
PAUSE_FOR_TESTS = "KERAS_NETS_TEST_PAUSE"


class DatasetError(ValueError):
    """DATA_DIR is not a dataset training can use; the message says why."""


class OutputError(ValueError):
    """OUTPUT cannot take the run (a file, or an earlier run without `overwrite`)."""


def train_classifier(
    data_dir,
    output,
    *,
    base,
    classes,
    epochs=10,
    batch_size=32,
    seed=1337,
    overwrite=False,
    verbose=1,
    augment=False,
    distribution=None,
    **classifier_kwargs,
):
    """Trains a classifier on DATA_DIR and writes the run to OUTPUT; returns its history.

    Args:
      data_dir: folder with `train/<class>/*` and `validation/<class>/*`.
      output: folder for model.keras (after the last epoch), best.keras (lowest validation
        loss), class_names.json and history.json; created if missing.
      base: registry name of the base network.
      classes: number of classes; DATA_DIR must have exactly that many class folders.
      epochs, batch_size: of `model.fit`.
      seed: seed of the shuffling and of the new layers: the same run twice gives the same model.
      overwrite: replace an earlier run in OUTPUT (otherwise an OutputError).
      verbose: 0 silent, 1 a progress bar (for a terminal), 2 one plain line per epoch (for a
        log file: no escape codes, no redrawn bar; Keras' own 2 prints two lines per epoch).
      augment: train on randomly flipped, shifted and zoomed images (`augmentation_layers`), applied to
        the training dataset only: the saved models hold no augmentation layer.
      distribution: a strategy from `keras_nets.distribution.data_parallel`: the model is built
        and trained on its devices, each batch of `batch_size` (the global batch) split across
        them.
      **classifier_kwargs: `finetune.classifier_to_train` arguments (weights, trained_classes,
        image_size, freeze, dropout, learning_rate, alpha, ...).

    Returns:
      {metric: [value per epoch]}, as written to history.json.
    """
    import keras

    from keras_nets import finetune

    output = pathlib.Path(output)
    check_output(output, overwrite)
    image_size = classifier_kwargs.get("image_size")
    if image_size is not None and image_size > MAX_IMAGE_SIZE:
        raise ValueError(
            f"image_size={image_size}: expected at most {MAX_IMAGE_SIZE} (a batch of larger "
            "images does not fit in memory)"
        )
    finetune.check_learning_rate(classifier_kwargs.get("learning_rate", finetune.DEFAULT_LEARNING_RATE))
    class_names = check_dataset(data_dir, classes)
    keras.utils.set_random_seed(seed)
    with scope_of(distribution):
        model = finetune.classifier_to_train(base, classes, **classifier_kwargs)
    size = tuple(model.input_shape[1:3])
    train, validation = (
        keras.utils.image_dataset_from_directory(
            os.path.join(data_dir, split),
            class_names=class_names,
            image_size=size,
            batch_size=batch_size,
            shuffle=split == "train",
            seed=seed,
            verbose=bool(verbose),
        )
        for split in SPLITS
    )
    if augment:
        augmentation = augmentation_layers(seed)

        def augmented(images, labels):
            for layer in augmentation:
                images = layer(images, training=True)
            return images, labels

        train = train.map(augmented)

    output.mkdir(parents=True, exist_ok=True)
    if overwrite:
        remove_run(output)
    write_json(output / CLASS_NAMES_FILE, class_names)
    pause_for_tests("before-fit")
    try:
        with scope_of(distribution):
            history = model.fit(
                train,
                validation_data=validation,
                epochs=epochs,
                callbacks=[
                    best_checkpoint_class()(output / "best.keras"),
                    *([epoch_lines_class()()] if verbose == 2 else []),
                ],
                shuffle=False,  # the training dataset reshuffles itself every epoch
                verbose=1 if verbose == 1 else 0,
            )
    except Exception as error:
        if not isinstance(error, MemoryError) and type(error).__name__ != "ResourceExhaustedError":
            raise
        raise ValueError(
            f"out of memory training {size[0]}x{size[1]} images in batches of {batch_size}: "
            "expected a smaller image_size or batch_size"
        ) from None
    with atomic_path(output / "model.keras") as partial:
        model.save(partial)
        pause_for_tests("final-save")
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    write_json(output / "history.json", history)
    return history


def augmentation_layers(seed=None):
    """Random horizontal flips, shifts of up to 10 %, zooms in (random crops, scaled back to the
    size) of up to 20 % and out of up to 10 %: Keras preprocessing layers, for the training
    dataset's `map`. A list, called one by one: each layer runs in tf.data on every backend, but
    a `keras.Sequential` of them would run on the Keras backend (JAX fails there). Flips suit
    photos, not text or digits."""
    import keras

    return [
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed),
        keras.layers.RandomZoom((-0.2, 0.1), fill_mode="reflect", seed=seed),
    ]


def summary(history, output):
    """The one line that ends a run: its best epoch (lowest validation loss, as best.keras),
    that epoch's validation accuracy and loss, and the files written to `output`."""
    losses = history.get("val_loss", [])
    finite = [i for i, value in enumerate(losses) if math.isfinite(value)]
    names = [name for name in RUN_FILES if finite or name != "best.keras"]
    if not finite:
        best = "no epoch had a finite validation loss (no best.keras)"
    else:
        i = min(finite, key=losses.__getitem__)
        accuracy = history.get("val_accuracy", [math.nan] * len(losses))[i]
        best = (
            f"best epoch {i + 1}/{len(losses)}: val_accuracy {accuracy:.4f}, "
            f"val_loss {losses[i]:.4f}"
        )
    return f"{best}; wrote {', '.join(str(pathlib.Path(output, name)) for name in names)}"


def scope_of(distribution):
    """`distribution.scope()`, or a scope that does nothing for None (one device)."""
    return contextlib.nullcontext() if distribution is None else distribution.scope()


def check_output(output, overwrite):
    """An OutputError if OUTPUT is a file, or holds a run and `overwrite` is False."""
    output = pathlib.Path(output)
    if os.path.lexists(output) and not output.is_dir():
        raise OutputError(f"output={output}: not a directory (a file of that name exists)")
    found = [name for name in RUN_FILES if os.path.lexists(output / name)]
    if found and not overwrite:
        raise OutputError(
            f"output={output} holds an earlier run ({', '.join(found)}): choose another folder, "
            "or overwrite it (--overwrite)"
        )


def remove_run(output):
    """Removes an earlier run's files, models first: its labels outlive its models."""
    for name in ("best.keras", "model.keras", "history.json", CLASS_NAMES_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.remove(output / name)


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path` to write to; renamed to `path` only if the block completes.

    The temporary name is hidden and keeps the suffix (Keras wants ".keras"); on any exception,
    KeyboardInterrupt included, it is removed and `path` is left as it was.
    """
    path = pathlib.Path(path)
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)


def write_json(path, value):
    with atomic_path(path) as partial:
        with open(partial, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2)
            f.write("\n")


@functools.cache
def best_checkpoint_class():
    """`BestCheckpoint`, a Keras callback class, defined on first use (it imports Keras)."""
    import keras

    class BestCheckpoint(keras.callbacks.Callback):
        """Saves the model to `path` whenever `monitor` improves, atomically (`atomic_path`)."""

        def __init__(self, path, monitor="val_loss"):
            super().__init__()
            self.path, self.monitor, self.best = pathlib.Path(path), monitor, math.inf

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(self.monitor)
            if value is not None and math.isfinite(value) and value < self.best:
                self.best = float(value)
                with atomic_path(self.path) as partial:
                    self.model.save(partial)
                    pause_for_tests("best-save")

    return BestCheckpoint


@functools.cache
def epoch_lines_class():
    """`EpochLines`, a Keras callback class printing one plain line per epoch (imports Keras)."""
    import keras

    class EpochLines(keras.callbacks.Callback):
        """Prints "epoch 3/10: accuracy 0.8912, loss 0.4123, val_accuracy ..., ... (14 s)"."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            metrics = ", ".join(f"{name} {float(value):.4f}" for name, value in (logs or {}).items())
            seconds = time.monotonic() - self.start
            epochs = self.params["epochs"]
            print(f"epoch {epoch + 1}/{epochs}: {metrics} ({seconds:.0f} s)", flush=True)

    return EpochLines


def __getattr__(name):
    if name == "BestCheckpoint":  # training.BestCheckpoint(path): see best_checkpoint_class
        return best_checkpoint_class()
    raise AttributeError(f"module 'keras_nets.training' has no attribute {name!r}")


def pause_for_tests(point):
    """Pauses here if the test-only PAUSE_FOR_TESTS variable names this point (else nothing)."""
    wanted, _, marker = os.environ.get(PAUSE_FOR_TESTS, "").partition(":")
    if wanted == point:
        pathlib.Path(marker).touch()
        time.sleep(120)


def check_dataset(data_dir, classes):
    """The class names (folder names, in label order), or a DatasetError for a bad DATA_DIR.

    Checks that both splits exist and hold the same `classes` class folders, that every class
    has images, and that every image is a regular file that decodes the way the training
    pipeline will decode it. The files checked are those `image_dataset_from_directory` reads
    (hidden files included; hidden class folders excluded).

    Args:
      data_dir: folder with `train/<class>/*` and `validation/<class>/*`.
      classes: the number of class folders expected.
    """
    data_dir = pathlib.Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: no such directory")
    class_names, files = None, []
    for split in SPLITS:
        split_dir = data_dir / split
        if not split_dir.is_dir():
            raise DatasetError(
                f"{split_dir}: missing; expected {data_dir}/train/<class>/* and "
                f"{data_dir}/validation/<class>/*"
            )
        names = sorted(
            p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
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
            images = list(walk_images(split_dir / name, include_hidden=True))
            if not images:
                raise DatasetError(
                    f"{split_dir / name} has no images (expected files ending in "
                    f"{', '.join(IMAGE_EXTENSIONS)})"
                )
            files.extend(images)
    unreadable = [f"  {path}: {reason}" for path, reason in map(decode_problem, files) if reason]
    if unreadable:
        more = len(unreadable) - MAX_LISTED
        raise DatasetError(
            f"{len(unreadable)} image(s) cannot be decoded; fix or remove them:\n"
            + "\n".join(unreadable[:MAX_LISTED])
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
    return class_names


def decode_problem(path):
    """(path, None) if TensorFlow decodes the image as training will, else (path, the reason)."""
    problem = not_a_regular_file(path)
    if problem:
        return path, problem
    import tensorflow as tf

    try:
        tf.image.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        return path, getattr(error, "message", str(error)).strip().splitlines()[0]
    return path, None
