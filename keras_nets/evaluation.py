"""Measured accuracy: top-1 and top-5 of a model on a folder of labelled images.

    import keras_nets
    result = keras_nets.evaluate("resnet50", "ILSVRC2012/val")   # ImageNet layout: n01440764/...
    print(result.top1, result.top5, result.images_per_second)
    keras_nets.evaluate(weights="run/model.keras", data_dir="flowers/validation")  # trained model

What `keras-nets evaluate` prints. DATA holds one sub-folder per class: WordNet ids
(`n01440764`, ...) for an ImageNet model, the class names of its `class_names.json` for a
classifier trained by `keras-nets train`. A folder that names no class of the model is reported
before any image is read. Images are read as predict reads them (`Classifier.read`: the model's
evaluation pipeline, `keras_nets.preprocessing.eval_transform`), decoded on a pool of threads;
a file that cannot be read, or a folder that cannot be listed, is reported and skipped, and
counts in `failed`.

An image is top-k correct when fewer than k other classes score at least as high as its own
class (`keras_nets.scores.ranks`: a tie counts against it, so a model that scores every class the
same is 0 %, not 100 %); the confusion matrix counts the same way (`scores.predicted`). A model
that outputs NaN for an image is a `scores.NaNScoresError` naming the image: nothing is counted.
"""

import dataclasses
import os
import time

import numpy as np

from keras_nets.core import scores as scoring
from keras_nets.images.files import DatasetError, is_folder, walk_images

CONFUSION_MAX_CLASSES = 50  # a confusion matrix is drawn for this many classes at most
OTHER = "other"  # the confusion matrix's last column: a class of the model that has no folder


@dataclasses.dataclass
class Evaluation:
    """The outcome of `evaluate`.

    Attributes:
      top1, top5: the fractions of the images read whose class is the first / among the five
        first (None when no image could be read; top5 None too when the model has 5 classes or
        fewer, where every image is among the five first: `notes` says so).
      images: the number of images read and scored; `failed`: [(path, message)] of those that
        could not be read (not counted in the accuracies).
      images_per_second: images read and scored per second of wall time, reading included.
      per_class: {class folder: {"images", "top1", "top5"}}, in folder order.
      classes: the class folders, in order; `confusion`: counts, one row per true class (in
        `classes` order), one column per predicted class, named in `confusion_columns`: the
        `classes`, then "other" (a class of the model that has no folder); both None above
        CONFUSION_MAX_CLASSES classes.
      pipeline: the evaluation pipeline (`EvalTransform.describe()`) and the model.
    """

    top1: float
    top5: float
    images: int
    failed: list
    images_per_second: float
    per_class: dict
    classes: list
    confusion: list
    pipeline: dict
    confusion_columns: list = None
    notes: list = dataclasses.field(default_factory=list)

    def as_dict(self):
        """The result as JSON-ready values (`keras-nets evaluate --json`)."""
        record = dataclasses.asdict(self)
        record["failed"] = [{"image": str(path), "error": message} for path, message in self.failed]
        return record


def evaluate(
    model=None,
    data_dir=None,
    *,
    weights="imagenet",
    batch=32,
    crop_pct=None,
    limit=None,
    fast=False,
    classifier=None,
    progress=None,
    on_error=None,
    workers=None,
    alpha=None,
    size=None,
):
    """Top-1 and top-5 accuracy of a model on the labelled image folders in `data_dir`.

    Args:
      model: a model name (default "xception"), as `Classifier.load` takes it; ignored for a
        `.keras` file or a `classifier`.
      data_dir: one sub-folder per class (WordNet ids for ImageNet models, `class_names.json`'s
        names for a trained model); files are found as predict finds them (hidden ones skipped).
      weights: "imagenet", a `.h5` weights file for `model`, or a `model.keras` saved by
        `keras-nets train`.
      batch: images per batch.
      crop_pct: overrides the evaluation pipeline's centre-crop fraction.
      limit: evaluate at most this many images, taken from every class in turn (the first
        image of each class, then the second, ...), so a small limit still spans the classes.
      fast: predict through `keras_nets.compile_for_inference`.
      classifier: a `prediction.Classifier` to evaluate instead of loading one (a model of your
        own, e.g. at another input size, with `preprocessing.eval_transform(name, size)`).
      progress: called with (images done, read or failed; images in all) after each batch.
      on_error: called with each ImageError (a file that could not be read).
      workers: threads decoding images (default: one per CPU).
      alpha, size: a MobileNet's width multiplier and the input size, as `Classifier.load`
        takes them.

    Returns:
      An `Evaluation`. A DatasetError (a ValueError) names what does not fit, before any image
      is read.
    """
    from keras_nets.images.files import ImageError
    from keras_nets.prediction import Classifier
    from keras_nets.prediction.folders import decoded_batches

    if not (isinstance(batch, int) and batch >= 1):
        raise ValueError(f"batch={batch!r}: expected a positive integer")
    if limit is not None and not (isinstance(limit, int) and limit >= 1):
        raise ValueError(f"limit={limit!r}: expected a positive integer or None")
    folders = class_folders(data_dir)  # before the model loads: a wrong folder fails fast
    loaded = classifier is None
    predictor = classifier  # `classifier=`, a public keyword: a prediction.Classifier given
    if loaded:
        predictor = Classifier.load(
            model, weights, fast=fast, crop_pct=crop_pct, alpha=alpha, size=size
        )
    label_of = class_indices(predictor, folders, data_dir)
    failed = []

    def unlisted(folder, message):  # a folder that cannot be listed: reported, the rest goes on
        failed.append((folder, message))
        if on_error is not None:
            on_error(ImageError(message))

    files = labelled_files(data_dir, folders, limit, on_error=unlisted)
    classes = [label_of[folder] for folder in folders]
    column = {label: i for i, label in enumerate(classes)}
    confusion = np.zeros((len(folders), len(folders) + 1), dtype="int64")
    ranks, truths, done = [], [], 0

    start = time.perf_counter()
    for decoded in decoded_batches(
        iter(files), lambda item: predictor.read(item[0]), batch, workers
    ):
        good = []
        for (path, row), pixels in decoded:
            if isinstance(pixels, ImageError):
                failed.append((path, str(pixels)))
                if on_error is not None:
                    on_error(pixels)
            else:
                good.append((path, row, pixels))
        if good:
            scores = predictor.scores([pixels for _, _, pixels in good])
            scoring.refuse_nan(scores, [path for path, _, _ in good])
            rows = np.array([row for _, row, _ in good], dtype="int64")
            true_classes = np.array([classes[row] for row in rows], dtype="int64")
            ranks.extend(scoring.ranks(scores, true_classes).tolist())
            truths.extend(rows.tolist())
            for row, guess in zip(rows, scoring.predicted(scores, true_classes)):
                confusion[row, column.get(int(guess), len(folders))] += 1
        done += len(decoded)
        if progress is not None:
            progress(done, len(files))
    seconds = time.perf_counter() - start

    ranks, truths = np.array(ranks, dtype="int64"), np.array(truths, dtype="int64")
    per_class = {folder: accuracies(ranks[truths == row]) for row, folder in enumerate(folders)}
    overall = accuracies(ranks)
    model_classes = predictor.classes
    notes = []
    if model_classes <= 5:  # every class is among the five first: top-5 would be 100 %
        notes.append(
            f"top-5 not measured: the model has {model_classes} classes, so every image "
            "is among the five first"
        )
        overall["top5"] = None
        for figures in per_class.values():
            figures["top5"] = None
    small = len(folders) <= CONFUSION_MAX_CLASSES
    return Evaluation(
        top1=overall["top1"],
        top5=overall["top5"],
        images=int(ranks.size),
        failed=failed,
        images_per_second=float(done) / seconds if seconds > 0 else None,
        per_class=per_class,
        classes=list(folders),
        confusion=confusion.tolist() if small else None,
        confusion_columns=[*folders, OTHER] if small else None,
        notes=notes,
        pipeline={
            **predictor.transform.describe(),
            "model": predictor.model_name,
            "weights": str(weights) if loaded else None,
        },
    )


def accuracies(ranks):
    """{"images", "top1", "top5"} for an array of ranks (other classes scoring at least as high
    as the true one)."""
    count = int(ranks.size)
    if count == 0:
        return {"images": 0, "top1": None, "top5": None}
    return {
        "images": count,
        "top1": float(np.sum(ranks < 1)) / float(count),
        "top5": float(np.sum(ranks < 5)) / float(count),
    }


def class_folders(data_dir):
    """The class sub-folders of `data_dir`, sorted (hidden ones skipped); a DatasetError if none."""
    if data_dir is None or not os.path.isdir(data_dir):
        raise DatasetError(f"data_dir={data_dir}: not a directory")
    try:
        with os.scandir(data_dir) as listing:
            folders = sorted(
                entry.name
                for entry in listing
                if is_folder(entry) and not entry.name.startswith(".")
            )
    except OSError as error:
        raise DatasetError(f"data_dir={data_dir}: cannot be listed ({error.strerror})") from None
    if not folders:
        raise DatasetError(
            f"data_dir={data_dir}: no class folders in it (expected one sub-folder per class)"
        )
    return folders


def class_indices(predictor, folders, data_dir):
    """{folder: the model's output index of that class}; a DatasetError names the folders the
    model has no class for (WordNet ids for an ImageNet model, class_names.json for a trained
    one)."""
    if predictor.class_names is not None:
        known = {name: i for i, name in enumerate(predictor.class_names)}
        kind = "classes of the model's class_names.json"
    else:
        from keras_nets.core.imagenet import class_index

        known = {wnid: i for i, (wnid, _) in class_index().items()}
        kind = "ImageNet WordNet ids (n01440764, ...)"
    unknown = [folder for folder in folders if folder not in known]
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        hint = ""
        if set(unknown) & {"train", "validation"}:
            hint = "; give the split folder itself (e.g. DATA/validation)"
        raise DatasetError(
            f"data_dir={data_dir}: {len(unknown)} of its {len(folders)} folders are not {kind}: "
            f"{shown}{hint}"
        )
    return {folder: known[folder] for folder in folders}


def labelled_files(data_dir, folders, limit=None, on_error=None):
    """[(path, row)]: the images of each class folder (row: its index in `folders`), class by
    class; with `limit`, at most that many, taken from every class in turn. `on_error`: see
    `image_files.walk_images` (a folder that cannot be listed)."""
    per_folder = [
        list(walk_images(os.path.join(data_dir, folder), on_error=on_error)) for folder in folders
    ]
    if limit is None:
        return [(path, row) for row, paths in enumerate(per_folder) for path in paths]
    interleaved = [
        (paths[i], row)
        for i in range(max(map(len, per_folder)))
        for row, paths in enumerate(per_folder)
        if i < len(paths)
    ]
    return interleaved[:limit]


def write_confusion_png(evaluation, path):
    """Draws `evaluation.confusion` (at most CONFUSION_MAX_CLASSES classes) to the PNG `path`,
    written under a temporary name first. Needs matplotlib: an ImportError without it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_nets.core.safe_files import atomic_path

    counts = np.array(evaluation.confusion, dtype="float64")
    labels = list(evaluation.classes)
    size = 2.0 + 0.3 * len(labels)
    figure, axes = plt.subplots(figsize=(size + 1.0, size))
    image = axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(labels) + 1), evaluation.confusion_columns, rotation=90)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    figure.colorbar(image, ax=axes, label="images")
    figure.tight_layout()
    with atomic_path(path) as partial:
        figure.savefig(partial, format="png")
    plt.close(figure)
