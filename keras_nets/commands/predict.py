"""`keras-nets predict`: the top classes of photos, for an ImageNet model or one you trained.

    keras-nets predict elephant.jpg                       # Xception, ImageNet weights
    keras-nets predict photos/ --model resnet50 --json    # a directory, one JSON line per image
    keras-nets predict photo.jpg --weights run/model.keras  # a model saved by `keras-nets train`

Images are resized to the model's input size and preprocessed its own way. A file that is not a
readable image is reported on stderr by name and skipped; the exit status is then 1.
"""

import argparse
import json
import os
import pathlib
import sys

from keras_nets.image_files import ImageError, find_images, load_rgb

IMAGENET = "imagenet"
DEFAULT_MODEL = "xception"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="top-k classes of images or directories of images",
        description="Predicts the top classes of each image; directories are walked for images.",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or directories"
    )
    parser.add_argument(
        "--model",
        default=None,
        help=f"registry name of the network (default {DEFAULT_MODEL}); keras_nets.list_models()",
    )
    parser.add_argument(
        "--weights",
        default=IMAGENET,
        metavar="imagenet|PATH",
        help="'imagenet' (published weights, downloaded once), a .h5 weights file for --model, "
        "or a model.keras saved by `keras-nets train` (labels from its class_names.json)",
    )
    parser.add_argument("--top", type=positive_int, default=5, help="classes shown per image (5)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image and line")
    parser.add_argument("--batch", type=positive_int, default=32, help="images per batch (32)")
    parser.add_argument(
        "--fast", action="store_true", help="predict through keras_nets.compile_for_inference"
    )
    parser.set_defaults(run=run)


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer")
    return value


def run(args):
    paths, failed = [], 0
    for item in args.inputs:
        if os.path.exists(item):
            paths.extend(find_images([item]))
        else:
            print(f"{item}: no such file or directory", file=sys.stderr)
            failed += 1
    if not paths:
        print("keras-nets predict: error: no images found", file=sys.stderr)
        return 1
    try:
        classifier = Classifier.load(args.model, args.weights, fast=args.fast)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"keras-nets predict: error: {error}", file=sys.stderr)
        return 2

    progress = Progress(len(paths), enabled=any(os.path.isdir(item) for item in args.inputs))
    for start in range(0, len(paths), args.batch):
        images, good = [], []
        for path in paths[start : start + args.batch]:
            try:
                images.append(load_rgb(path, classifier.size))
                good.append(path)
            except ImageError as error:
                progress.message(f"{error}; skipped")
                failed += 1
        if good:
            progress.clear()
            for path, predictions in zip(good, classifier.predict(images, args.top)):
                show(path, predictions, as_json=args.json)
        progress.advance(len(paths[start : start + args.batch]))
    progress.close()
    if failed:
        print(f"keras-nets predict: {failed} input(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


class Classifier:
    """A model with its input size, preprocessing and label decoding."""

    def __init__(self, model, preprocess, decode, fast=False):
        self.model = model
        self.size = tuple(model.input_shape[1:3])
        self.preprocess = preprocess
        self.decode = decode
        if fast:
            import keras_nets

            self._predict = keras_nets.compile_for_inference(model).predict
        else:
            self._predict = lambda batch: model.predict(batch, verbose=0)

    @classmethod
    def load(cls, model_name, weights, fast=False):
        if str(weights).endswith(".keras"):
            return cls.from_trained(weights, fast=fast)
        from keras_nets import registry

        config = registry.get_config(model_name or DEFAULT_MODEL)
        model = config.build(weights=weights)
        return cls(model, config.preprocess_input, imagenet_decoder, fast=fast)

    @classmethod
    def from_trained(cls, path, fast=False):
        """A model.keras saved by `keras-nets train`; its class_names.json lies beside it."""
        from keras_nets import finetune
        from keras_nets.imagenet import top_classes

        path = pathlib.Path(path)
        if not path.is_file():
            raise ValueError(f"--weights {path}: no such model file")
        names_path = path.parent / "class_names.json"
        if not names_path.is_file():
            raise ValueError(
                f"--weights {path}: no class_names.json beside it (keras-nets train writes one)"
            )
        with open(names_path) as f:
            class_names = json.load(f)
        try:
            model = finetune.load_trained(path)
        except ValueError as error:
            raise ValueError(f"--weights {error}") from None
        if model.output_shape[-1] != len(class_names):
            raise ValueError(
                f"{names_path} lists {len(class_names)} classes but {path} predicts "
                f"{model.output_shape[-1]}"
            )

        labels = {i: (None, name) for i, name in enumerate(class_names)}  # no WordNet ids

        def decode(probabilities, top):
            return top_classes(probabilities, top, labels)

        # The model preprocesses its raw 0-255 input itself.
        return cls(model, lambda batch: batch, decode, fast=fast)

    def predict(self, images, top):
        """[(wnid or None, label, score), ...] best first, for each image of a list."""
        import numpy as np

        batch = self.preprocess(np.stack(images).astype("float32"))
        probabilities = np.asarray(self._predict(batch))
        return self.decode(probabilities, min(top, probabilities.shape[-1]))


def imagenet_decoder(probabilities, top):
    from keras_nets.imagenet import decode_predictions

    return decode_predictions(probabilities, top=top)


def show(path, predictions, as_json):
    if as_json:
        record = {
            "image": str(path),
            "predictions": [
                {"wnid": wnid, "label": label, "score": score} for wnid, label, score in predictions
            ],
        }
        print(json.dumps(record), flush=True)
        return
    print(path)
    for rank, (wnid, label, score) in enumerate(predictions, 1):
        print(f"  {rank:>2}. {label:<28} {wnid or '':<10} {score:8.2%}")
    print(flush=True)


class Progress:
    """A one-line progress bar on a terminal's stderr, cleared while results are printed."""

    WIDTH = 30

    def __init__(self, total, enabled):
        self.total, self.done = total, 0
        self.enabled = enabled and sys.stderr.isatty()
        self.draw()

    def draw(self):
        if self.enabled:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            print(f"\r[{bar}] {self.done}/{self.total} images", end="", file=sys.stderr, flush=True)

    def clear(self):
        if self.enabled:
            print("\r" + " " * (self.WIDTH + 40) + "\r", end="", file=sys.stderr, flush=True)

    def advance(self, count):
        self.done += count
        self.draw()

    def message(self, text):
        self.clear()
        print(text, file=sys.stderr)
        self.draw()

    def close(self):
        if self.enabled:
            print(file=sys.stderr)
