"""Training a classifier on folders of images, safely: what `keras-nets train` does, for Python.

    from keras_nets import training
    training.train_classifier("flowers/", "run/", base="mobilenet_v2", classes=5, epochs=10)

DATA_DIR holds `train/<class>/*` and `validation/<class>/*` (`check_dataset` reads it completely
before anything is built). The classifier is `finetune.classifier_to_train`. Images are read
for training exactly as `keras-nets predict` and `keras-nets evaluate` read them for the trained
classifier (`read_for_training`, a `keras.utils.PyDataset`): a photo's EXIF orientation,
transparency and resizing are the same at both ends. The run is written
to OUTPUT so that nothing is lost and nothing is half-written:

- an OUTPUT that holds a run (any of RUN_FILES) is refused unless `overwrite=True`, and then only
  those files are replaced; OUTPUT naming a file is refused;
- `class_names.json` is written before the first epoch; with `overwrite`, the earlier run's files
  are removed first (its models before its labels), so labels never sit beside another run's
  models;
- every file is written under a temporary name in OUTPUT and renamed when complete
  (`safe_files.atomic_path`), `best.keras` included (`BestCheckpoint`); temporary files that a
  run killed outright left (SIGKILL) are removed by the next run;
- OUTPUT is locked while the run writes to it (`safe_files.locked`): a second run into it is
  refused in one line, so two runs never mix their files;
- a loss that turns NaN stops the run with an error (`check_finite_loss`), before a model.keras
  that would predict NaN is written;

so an interruption at any moment (Ctrl-C, or SIGTERM through `keras-nets train`) leaves either the
earlier complete run or a consistent new one: each `.keras` there loads and predicts the classes
of the `class_names.json` beside it.
"""

import contextlib
import functools
import math
import os
import pathlib
import time

from keras_nets.core import safe_files
from keras_nets.core.safe_files import (
    PAUSE_FOR_TESTS,  # noqa: F401 - tests set training.PAUSE_FOR_TESTS
    atomic_path,
    pause_for_tests,
    write_json,
)
from keras_nets.images.files import CLASS_NAMES_FILE
from keras_nets.images.transforms import MAX_IMAGE_SIZE
from keras_nets.training.datasets import SPLITS, check_dataset, labelled_images, split_files

RUN_FILES = ("model.keras", "best.keras", "history.json", CLASS_NAMES_FILE)


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
    finetune.check_learning_rate(
        classifier_kwargs.get("learning_rate", finetune.DEFAULT_LEARNING_RATE)
    )
    class_names = check_dataset(data_dir, classes)
    keras.utils.set_random_seed(seed)
    with scope_of(distribution):
        model = finetune.classifier_to_train(base, classes, **classifier_kwargs)
    size = tuple(model.input_shape[1:3])
    train, validation = (
        labelled_images(
            *split_files(data_dir, split, class_names),
            size=size[0],
            batch_size=batch_size,
            shuffle=split == "train",
            seed=seed,
            augmentation=augmentation_layers(seed) if augment and split == "train" else None,
        )
        for split in SPLITS
    )

    output.mkdir(parents=True, exist_ok=True)
    with safe_files.locked(output, "output"):  # a second run into OUTPUT is refused here
        check_output(output, overwrite)  # again: a run may have finished there meanwhile
        safe_files.remove_stale_partials(output, RUN_FILES)  # a killed run's temporary files
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
                        keras.callbacks.TerminateOnNaN(),  # NaN weights learn nothing more
                        *([epoch_lines_class()()] if verbose == 2 else []),
                    ],
                    shuffle=False,  # the training dataset reshuffles itself every epoch
                    verbose=1 if verbose == 1 else 0,
                )
        except Exception as error:
            out_of_memory = type(error).__name__ == "ResourceExhaustedError"
            if not isinstance(error, MemoryError) and not out_of_memory:
                raise
            raise ValueError(
                f"out of memory training {size[0]}x{size[1]} images in batches of {batch_size}: "
                "expected a smaller image_size or batch_size"
            ) from None
        check_finite_loss(history.history)  # before model.keras: a NaN model is not saved
        with atomic_path(output / "model.keras") as partial:
            model.save(partial)
            pause_for_tests("final-save")
        history = {key: [float(v) for v in values] for key, values in history.history.items()}
        write_json(output / "history.json", history)
    return history


def augmentation_layers(seed=None):
    """Random horizontal flips, shifts of up to 10 %, zooms in (random crops, scaled back to the
    size) of up to 20 % and out of up to 10 %: Keras preprocessing layers, applied to the
    training batches only (`labelled_images`), never part of the saved model. Flips suit photos,
    not text or digits."""
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


def check_finite_loss(history):
    """A ValueError if the training loss became NaN or infinite (the weights then are too):
    training diverged, and a model that predicts NaN must not be saved as the run's result."""
    losses = history.get("loss", [])
    bad = [epoch for epoch, loss in enumerate(losses, 1) if not math.isfinite(loss)]
    if bad:
        raise ValueError(
            f"training diverged: the loss is {losses[bad[0] - 1]} at epoch {bad[0]}, so "
            "model.keras was not written (best.keras, if there, is the best finite epoch); "
            "a smaller learning rate usually avoids this"
        )


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
    for name in found:  # with overwrite: only files an earlier run could have written
        problem = safe_files.overwrite_problem(output / name, overwrite=True)
        if problem:
            raise OutputError(
                f"output={output}: its {name} is {problem}, not a file of an earlier run; not "
                "replaced"
            )


def remove_run(output):
    """Removes an earlier run's files, models first: its labels outlive its models."""
    for name in ("best.keras", "model.keras", "history.json", CLASS_NAMES_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.remove(output / name)


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
            metrics = ", ".join(
                f"{name} {float(value):.4f}" for name, value in (logs or {}).items()
            )
            seconds = time.monotonic() - self.start
            epochs = self.params["epochs"]
            print(f"epoch {epoch + 1}/{epochs}: {metrics} ({seconds:.0f} s)", flush=True)

    return EpochLines


def __getattr__(name):
    if name == "BestCheckpoint":  # training.BestCheckpoint(path): see best_checkpoint_class
        return best_checkpoint_class()
    raise AttributeError(f"module 'keras_nets.training' has no attribute {name!r}")
