"""`Predictor`: what a Spark, Dask or Ray worker calls on each batch of image files.

    predictor = Predictor("mobilenet_v2", top=3)               # settings only: cheap, picklable
    predictor({"path": paths, "bytes": contents})             # Ray Data's numpy batch format
    predictor(frame)                                          # pandas: Spark's path, content

The first call in a process loads the model (`prediction.Classifier.load`) and keeps it for
every later call there with the same settings, whichever copy of the Predictor makes it: an
engine may unpickle a copy per task. Each image goes through the model's evaluation pipeline
(`EvalTransform.decode`, JPEGs drafted as `keras-nets predict` reads them), so the pixels and the
answers are those of `keras-nets predict` on the same files. An image that cannot be read gets its
`error` and no classes; the rest of the batch is predicted.
"""

import threading

import numpy as np

from keras_nets.images.files import ImageError

# The columns a batch may hold: the file's path, and its bytes (Ray's `read_binary_files` names
# them "bytes", Spark's `binaryFile` "content"). Without bytes, each path is read from disk.
PATH = "path"
CONTENT_COLUMNS = ("bytes", "content")
# The columns added, with their types in Spark's words (the one description of them: Spark's
# schema and the Parquet schema of `keras-nets predict --engine dask` are made from it): the best
# class and its score, the `top` best (labels, scores and WordNet ids, best first; ids are None
# for a classifier trained by keras-nets), and why an image could not be read (None when it was).
RESULT_TYPES = {
    "label": "string",
    "score": "double",
    "top_labels": "array<string>",
    "top_scores": "array<double>",
    "top_wnids": "array<string>",
    "error": "string",
}
RESULT_COLUMNS = tuple(RESULT_TYPES)

_loaded = {}  # settings -> prediction.Classifier, one per process
_loading = threading.Lock()


class Predictor:
    """A picklable callable: one batch of image files in, the same batch with RESULT_COLUMNS out.
    It holds only its settings (a pickle of a few hundred bytes); the model is loaded by the first
    call in each process (`classifier`).

    Args:
      model: a model name (default "xception"), or the path of a `model.keras` saved by
        `keras-nets train` (then `weights` is ignored).
      weights: "imagenet", or a `.h5` weights file for `model`. Random weights (None) are refused:
        every worker would draw its own.
      fast: predict through `keras_nets.compile_for_inference` (ONNX Runtime, the compiled-model
        cache of the worker's `$KERAS_HOME`).
      int8: with `fast`, the model quantized to int8, calibrated on `calibration`'s images (a
        folder every worker can read).
      top: classes per image.
      batch: images per model call; a larger batch given to the Predictor is cut into these.
      alpha, size, crop_pct: as `Classifier.load` takes them.
    """

    def __init__(
        self,
        model=None,
        weights="imagenet",
        *,
        fast=False,
        int8=False,
        calibration=None,
        top=5,
        batch=32,
        alpha=None,
        size=None,
        crop_pct=None,
    ):
        from keras_nets.core import registry

        if model is not None and str(model).endswith(".keras"):
            model, weights = None, str(model)
        if weights is None:
            raise ValueError(
                "weights=None: random weights would differ on every worker; expected 'imagenet', "
                "a .h5 weights file or a model.keras"
            )
        trained = str(weights).endswith(".keras")
        if model is not None and not trained and model not in registry.model_names():
            raise ValueError(
                f"model={model!r}: expected one of {', '.join(registry.model_names())}"
            )
        for name, value in (("top", top), ("batch", batch)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive integer")
        if int8 and not (fast and calibration is not None):
            raise ValueError(
                "int8=True: expected fast=True and calibration=<a folder of at least 32 images>"
            )
        if calibration is not None and not int8:
            raise ValueError(f"calibration={calibration!r}: goes with int8=True (and fast=True)")
        self.settings = (
            ("model", model),
            ("weights", str(weights)),
            ("fast", bool(fast)),
            ("calibration", None if calibration is None else str(calibration)),
            ("alpha", alpha),
            ("size", size),
            ("crop_pct", crop_pct),
        )
        self.top = int(top)
        self.batch = int(batch)

    def __repr__(self):
        options = ", ".join(f"{name}={value!r}" for name, value in self.settings)
        return f"Predictor({options}, top={self.top}, batch={self.batch})"

    @property
    def classifier(self):
        """The `prediction.Classifier` of these settings, loaded once per process."""
        with _loading:
            if self.settings not in _loaded:
                from keras_nets.prediction.classifier import Classifier

                _loaded[self.settings] = Classifier.load(**dict(self.settings))
            return _loaded[self.settings]

    def __call__(self, batch):
        """`batch` with RESULT_COLUMNS added: a pandas DataFrame (a copy) or a dict of numpy
        arrays (a new dict), with a "path" column and, optionally, the files' bytes ("bytes" or
        "content"; without them each path is read from disk). Rows keep their order."""
        if isinstance(batch, dict):
            paths = np.asarray(batch[PATH], dtype=object)
            content = next((batch[c] for c in CONTENT_COLUMNS if c in batch), None)
            return {**batch, **self.predict(paths, content)}
        import pandas

        paths = batch[PATH].to_numpy(dtype=object)
        content = next(
            (batch[c].to_numpy(dtype=object) for c in CONTENT_COLUMNS if c in batch), None
        )
        results = self.predict(paths, content)
        # dtype given: pandas would otherwise make text columns `str` in one batch and leave an
        # empty batch's `object`
        return batch.assign(
            **{
                name: pandas.Series(a, index=batch.index, dtype=a.dtype)
                for name, a in results.items()
            }
        )

    def predict(self, paths, content=None):
        """{column: numpy array}: RESULT_COLUMNS for each path, from `content` (the files'
        bytes, in the same order) or, without it, from the files."""
        from keras_nets.prediction.folders import decoded_batches

        predictor = self.classifier
        if content is None:
            sources, read = list(paths), predictor.read
        else:
            sources = list(range(len(paths)))

            def read(i):
                return predictor.transform.decode(content[i], str(paths[i]))

        results = {name: [] for name in RESULT_COLUMNS}
        for decoded in decoded_batches(sources, read, self.batch):
            good = [image for _, image in decoded if not isinstance(image, ImageError)]
            ranked = iter(predictor.predict(good, self.top) if good else ())
            for _, image in decoded:
                row = error_row(image) if isinstance(image, ImageError) else row_of(next(ranked))
                for name, value in zip(RESULT_COLUMNS, row):
                    results[name].append(value)
        return {name: column(name, values) for name, values in results.items()}


def row_of(predictions):
    """RESULT_COLUMNS of one image's [(wnid, label, score), ...], best first."""
    wnids, labels, scores = zip(*predictions)
    scores = [float(score) for score in scores]
    return labels[0], scores[0], list(labels), scores, list(wnids), None


def error_row(error):
    return None, float("nan"), [], [], [], str(error)


def column(name, values):
    """A result column as numpy holds it: scores as float64 (NaN where an image could not be
    read), the others as objects (text, None, lists), one element per row, so that an empty batch
    has the same types as any other (what Dask's `meta` states)."""
    if RESULT_TYPES[name] == "double":
        return np.asarray(values, dtype="float64")
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array
