"""Top-k classes of image files, for an ImageNet model or a classifier trained by keras-nets.

    from keras_nets.prediction import Classifier
    predictor = Classifier.load("resnet50")                  # published ImageNet weights
    for result in predictor.predict_files(["elephant.jpg", "photos/cat.png"], top=3):
        print(result.source, result.predictions or result.error)

What `keras-nets predict` prints, as Python values. Each image is read by
`image_files.read_image` (any PIL mode, EXIF orientation applied; files or http(s) URLs), then
goes through the model's evaluation pipeline (`preprocessing.eval_transform`: shorter side
resized, centre crop, the model's interpolation and `preprocess_input`), the one `keras-nets
evaluate` measures accuracy with. A classifier trained by keras-nets gets the whole image resized
to its input size, as in training (`preprocessing.trained_transform`).
"""

import dataclasses
import hashlib
import json

import numpy as np

from keras_nets.images.files import ImageError, read_image  # noqa: F401 - a public name here
from keras_nets.images.transforms import trained_transform

IMAGENET = "imagenet"
DEFAULT_MODEL = "xception"


class ScoresError(ValueError):
    """The model's scores cannot be ranked (NaN): its weights, not an image, are the problem."""


@dataclasses.dataclass
class Result:
    """One image's outcome: `predictions` [(wnid or None, label, score), ...] best first, or an
    `error` (an ImageError: the file could not be read) and no predictions."""

    source: object
    predictions: list = None
    error: Exception = None


class Classifier:
    """A predictor: a classifier (`.model`) with its evaluation pipeline
    (`preprocessing.EvalTransform`) and label decoding; what predict, evaluate and explain use."""

    def __init__(
        self,
        model,
        transform,
        decode,
        fast=False,
        class_names=None,
        calibration=None,
        cache=True,
    ):
        self.model = model  # None for a predictor from the compiled-model cache (`from_cache`)
        self.size = tuple(model.input_shape[1:3])
        self.classes = int(model.outputs[0].shape[-1])  # scores per image
        self.transform = transform
        self.decode = decode
        self.class_names = class_names  # a trained classifier's labels, in output order
        # How scores are computed, as a results file records it: "keras", "fast" or "fast int8".
        self.runtime = "keras" if not fast else "fast" if calibration is None else "fast int8"
        self.cache_key = None  # the fast path's entry in the compiled-model cache
        self._identity = None
        if fast:
            import keras_nets

            int8 = {"precision": "int8", "calibration": calibration, "transform": transform}
            options = {} if calibration is None else int8
            compiled = keras_nets.compile_for_inference(model, cache=cache, **options)
            self.cache_key = compiled.cache_key
            self._predict = compiled.predict
        else:
            self._predict = lambda batch: model.predict(batch, verbose=0)

    @classmethod
    def from_cache(cls, run, transform, record):
        """A predictor without a Keras model: `run(batch) -> scores` (the compiled-model cache's
        ONNX model on ONNX Runtime), with the labels and identity `record`ed when it was built
        (`prediction.cached`)."""
        names = record["class_names"]
        predictor = cls.__new__(cls)
        predictor.model = None
        predictor.size = (transform.size, transform.size)
        predictor.classes = record["classes"]
        predictor.transform = transform
        predictor.decode = imagenet_decoder if names is None else trained_decoder(names)
        predictor.class_names = names
        predictor.runtime = record["runtime"]
        predictor.cache_key = None
        predictor._identity = record["identity"]
        predictor._predict = run
        return predictor

    @property
    def model_name(self):
        """The model's name (`model.name`), with or without the Keras model at hand."""
        return self.model.name if self.model is not None else self._identity["model"]

    @property
    def identity(self):
        """What identifies the scores: the model's name, the sha256 of its weights' values
        (whatever file they came from), the labels ("imagenet" or the sha256 of the class
        names), the input size, the pipeline and the runtime. A results file records it."""
        if self._identity is None:
            from keras_nets.inference.cache import weights_sha256

            names = self.class_names  # the digest results files of earlier versions recorded
            digest = None if names is None else hashlib.sha256(json.dumps(list(names)).encode())
            labels = "imagenet" if digest is None else "sha256:" + digest.hexdigest()
            self._identity = {
                "model": self.model.name,
                "weights_sha256": weights_sha256(self.model),
                "labels": labels,
                "size": list(self.size),
                "pipeline": self.transform.describe(),
                "runtime": self.runtime,
            }
        return self._identity

    @classmethod
    def load(
        cls,
        model=None,
        weights=IMAGENET,
        fast=False,
        crop_pct=None,
        calibration=None,
        alpha=None,
        size=None,
    ):
        """The predictor for a model name and its weights, or for a trained `.keras` file.

        Args:
          model: a model name (default "xception"), as `list_models()` gives them (the public
            keyword keeps its name: CONTRIBUTING.md's words); ignored for a `.keras` file.
          weights: "imagenet", None (random weights: a model to time or to try the pipeline
            on), a `.h5` weights file for `model`, or a `model.keras` saved by `keras-nets
            train` (labels from the class_names.json beside it).
          fast: predict through `keras_nets.compile_for_inference`.
          crop_pct: overrides the evaluation pipeline's centre crop fraction.
          calibration: with `fast`, a folder of images: the fast path runs in int8, calibrated on
            them read through the same pipeline (`compile_for_inference(precision="int8")`).
          alpha: the width multiplier of a MobileNet (its builder's `alpha`); None: its default.
          size: the input height and width; None: the model's default size.
        """
        from keras_nets.prediction import cached

        model = model or DEFAULT_MODEL
        request = cached.request_key(model, weights, fast, crop_pct, calibration, alpha, size)
        found = cached.cached_model(request)  # the warm start: no Keras imported
        if found is not None:
            return cls.from_cache(*found)
        if str(weights).endswith(".keras"):
            predictor = cls.from_trained(
                weights, fast=fast, crop_pct=crop_pct, calibration=calibration
            )
        else:
            from keras_nets.core import factory
            from keras_nets.images.transforms import eval_transform

            config = factory.get_config(model)
            options = {} if alpha is None else {"alpha": alpha}
            if size is not None:
                options["input_shape"] = (size, size, 3)
            built = factory.build(config, weights=weights, **options)
            transform = eval_transform(config, size=built.input_shape[1], crop_pct=crop_pct)
            predictor = cls(
                built,
                transform,
                imagenet_decoder,
                fast=fast,
                calibration=calibration,
                cache=weights is not None,  # random weights are never asked for again
            )
        cached.remember(request, predictor)
        return predictor

    @classmethod
    def from_trained(cls, path, fast=False, crop_pct=None, calibration=None):
        """A model.keras saved by `keras-nets train`; its labels are the class_names.json beside it."""
        from keras_nets import finetune

        model, class_names = finetune.load_classifier(path)
        # The model preprocesses its raw 0-255 input itself.
        transform = trained_transform(model.input_shape[1], crop_pct=crop_pct)
        return cls(
            model,
            transform,
            trained_decoder(class_names),
            fast=fast,
            class_names=class_names,
            calibration=calibration,
        )

    def read(self, source):
        """The model's input pixels for a file path or URL (`transform.read`: JPEGs decoded at
        the smallest scale the pipeline needs); ImageError if it cannot be read, or its size is
        absurd for the pipeline (1x40000, say)."""
        return self.transform.read(source)

    def predict(self, images, top):
        """[(wnid or None, label, score), ...] best first, for each image of a list (`read`'s
        pixels)."""
        probabilities = self.scores(images)
        broken = int(np.isnan(probabilities).any(axis=-1).sum())
        if broken:
            raise ScoresError(
                f"the model scored {broken} of {len(images)} images NaN (not a number): its "
                "weights are broken; NaN cannot be ranked"
            )
        return self.decode(probabilities, min(top, probabilities.shape[-1]))

    def scores(self, images):
        """The model's output (one score per class) for `read`'s pixels of each image of a list."""
        return np.asarray(self._predict(self.transform.preprocess(np.stack(images))))

    def predict_files(self, sources, top=5, batch=32):
        """Yields a `Result` per file path or URL, in order, reading and predicting `batch` at a time.

        A source that cannot be read gives a Result with its ImageError; the others are predicted.
        """
        for start in range(0, len(sources), batch):
            images, results = [], []
            for source in sources[start : start + batch]:
                try:
                    images.append(self.read(source))
                    results.append(Result(source))
                except ImageError as error:
                    results.append(Result(source, error=error))
            good = [result for result in results if result.error is None]
            if good:
                for result, predictions in zip(good, self.predict(images, top)):
                    result.predictions = predictions
            yield from results


def imagenet_decoder(probabilities, top):
    from keras_nets.core.imagenet import decode_predictions

    return decode_predictions(probabilities, top=top)


def trained_decoder(class_names):
    """The decoder of a classifier trained by keras-nets: its class names, no WordNet ids."""
    from keras_nets.core.imagenet import top_classes

    labels = {i: (None, name) for i, name in enumerate(class_names)}

    def decode(probabilities, top):
        return top_classes(probabilities, top, labels)

    return decode
