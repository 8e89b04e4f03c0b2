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

import numpy as np

from keras_nets.images.files import ImageError, read_image
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

    def __init__(self, model, transform, decode, fast=False, class_names=None, calibration=None):
        self.model = model
        self.size = tuple(model.input_shape[1:3])
        self.transform = transform
        self.decode = decode
        self.class_names = class_names  # a trained classifier's labels, in output order
        # How scores are computed, as a results file records it: "keras", "fast" or "fast int8".
        self.runtime = "keras" if not fast else "fast" if calibration is None else "fast int8"
        if fast:
            import keras_nets

            int8 = {"precision": "int8", "calibration": calibration, "transform": transform}
            options = {} if calibration is None else int8
            self._predict = keras_nets.compile_for_inference(model, **options).predict
        else:
            self._predict = lambda batch: model.predict(batch, verbose=0)

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
        if str(weights).endswith(".keras"):
            return cls.from_trained(weights, fast=fast, crop_pct=crop_pct, calibration=calibration)
        from keras_nets.core import factory
        from keras_nets.images.transforms import eval_transform

        config = factory.get_config(model or DEFAULT_MODEL)
        options = {} if alpha is None else {"alpha": alpha}
        if size is not None:
            options["input_shape"] = (size, size, 3)
        built = factory.build(config, weights=weights, **options)
        transform = eval_transform(config, size=built.input_shape[1], crop_pct=crop_pct)
        return cls(built, transform, imagenet_decoder, fast=fast, calibration=calibration)

    @classmethod
    def from_trained(cls, path, fast=False, crop_pct=None, calibration=None):
        """A model.keras saved by `keras-nets train`; its labels are the class_names.json beside it."""
        from keras_nets import finetune
        from keras_nets.core.imagenet import top_classes

        model, class_names = finetune.load_classifier(path)
        labels = {i: (None, name) for i, name in enumerate(class_names)}  # no WordNet ids

        def decode(probabilities, top):
            return top_classes(probabilities, top, labels)

        # The model preprocesses its raw 0-255 input itself.
        transform = trained_transform(model.input_shape[1], crop_pct=crop_pct)
        return cls(
            model, transform, decode, fast=fast, class_names=class_names, calibration=calibration
        )

    def read(self, source):
        """The model's input pixels for a file path or URL (`transform` applied); ImageError if
        it cannot be read, or its size is absurd for the pipeline (1x40000, say)."""
        image = read_image(source)
        try:
            return self.transform(image)
        except ImageError as error:
            raise ImageError(f"{source}: {error}") from None

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
