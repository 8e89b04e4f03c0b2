"""`keras-nets train`: a classifier on your own folders of images, on a frozen ImageNet base
or, from random weights, trained whole from scratch.

    keras-nets train flowers/ --model mobilenet_v2 --classes 5 --epochs 10 --output run/
    keras-nets train digits/ --model shufflenet_v2 --size 32 --classes 10 --output run/

DATA_DIR holds `train/<class>/*` and `validation/<class>/*`. The work is
`keras_nets.training.train_classifier` (dataset checked completely before anything trains; an
--output holding a run refused unless --overwrite; every file written whole or not at all); this
module reads arguments and prints. Written to --output: model.keras (after the last epoch),
best.keras (lowest validation loss), class_names.json (before the first epoch) and history.json.
On a terminal Keras draws its progress bar; into a file or a pipe each epoch is one plain line.
The run ends with one line: its best epoch, that epoch's validation accuracy and loss, the files.
"""

import argparse
import sys

import keras_nets.training as training  # not `from keras_nets import`: that collects the registry
from keras_nets.commands._common import (
    MAX_BATCH,
    OK,
    USAGE,
    add_overwrite,
    bounded_positive_int,
    fail,
    positive_float,
    positive_int,
)
from keras_nets.images.transforms import MAX_IMAGE_SIZE

# Library argument names as this command's flags, for error messages.
FLAGS = {
    "output": "--output",
    "image_size": "--size",
    "weights": "--weights",
    "trained_classes": "--tclasses",
    "learning_rate": "--learning-rate",
    "classes": "--classes",
    "dropout": "--dropout",
    "devices": "--devices",
    "alpha": "--alpha",
}
# A classifier trained on more classes than this (ImageNet-21k has 21,843) is not one to continue
# from: its Dense layer alone would take gigabytes before the weights file is even read.
MAX_CLASSES = 100_000
# Pixels in a training batch, at most: MAX_BATCH images at 299x299 (0.55 GB of float32 input).
MAX_BATCH_PIXELS = MAX_BATCH * 299 * 299


def seed_value(text):
    """argparse type: a seed NumPy takes, 0 to 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer from 0 to 2**32-1")
    return value


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a classifier on DATA_DIR/train/<class>/* (a frozen ImageNet base, or from "
        "scratch)",
        description="Trains a classifier on DATA_DIR/train/<class>/*, validating on "
        "DATA_DIR/validation/<class>/*, and saves it to --output.",
    )
    parser.add_argument("data_dir", metavar="DATA_DIR", help="folder with train/ and validation/")
    parser.add_argument("--model", required=True, help="registry name of the base network")
    parser.add_argument("--classes", type=positive_int, required=True, help="number of classes")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the results")
    add_overwrite(parser, "an earlier run in --output")
    parser.add_argument(
        "--batch",
        type=bounded_positive_int(MAX_BATCH),
        default=32,
        help=f"batch size (32; at most {MAX_BATCH}, and --batch x --size^2 at most "
        f"{MAX_BATCH_PIXELS} pixels)",
    )
    parser.add_argument("--epochs", type=positive_int, default=10, help="epochs (10)")
    parser.add_argument(
        "--size",
        type=bounded_positive_int(MAX_IMAGE_SIZE),
        default=None,
        help="input height and width (model's default)",
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="imagenet|none|PATH",
        help="base weights: 'imagenet', 'none' (random: trains from scratch) or a notop .h5 file; "
        "with --tclasses, or a .keras file, a classifier trained earlier (default: 'imagenet', "
        "'none' for a model without published weights)",
    )
    parser.add_argument(
        "--tclasses",
        type=bounded_positive_int(MAX_CLASSES),
        default=None,
        metavar="T",
        help="--weights is a classifier trained on T classes: keep all but its classifier layer",
    )
    parser.add_argument(
        "--freeze",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="freeze the base network, train only the new head (default: --freeze with trained "
        "weights; with random weights the whole network trains, BatchNorm included)",
    )
    parser.add_argument(
        "--augment",
        action="store_true",
        help="train on randomly flipped, shifted and zoomed images (not in the saved model)",
    )
    parser.add_argument(
        "--alpha", type=positive_float, default=None, help="width multiplier (MobileNets; up to 4)"
    )
    parser.add_argument(
        "--learning-rate", type=positive_float, default=1e-3, help="Adam learning rate (0.001)"
    )
    parser.add_argument(
        "--dropout", type=float, default=0.2, help="dropout rate before the classifier (0.2)"
    )
    parser.add_argument(
        "--seed",
        type=seed_value,
        default=1337,
        help="seed of the shuffling and the new layers (1337; 0 to 2**32-1)",
    )
    parser.add_argument(
        "--distribute",
        choices=["data-parallel"],
        default=None,
        help="train on several local devices, each --batch split across them (JAX: "
        "keras.distribution.DataParallel; TensorFlow: tf.distribute.MirroredStrategy)",
    )
    parser.add_argument(
        "--devices",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --distribute: the first N local devices (default: all)",
    )
    parser.set_defaults(run=run)


def base_weights(args):
    """--weights as `classifier_to_train` takes it: None for "none", and by default "imagenet",
    or None for a model without published weights."""
    if args.weights is None:
        from keras_nets.core import factory

        return "imagenet" if factory.get_config(args.model).published_weights else None
    return None if args.weights.lower() == "none" else args.weights


def classifier_arguments(args):
    """`finetune.classifier_to_train` keyword arguments from the command line; a ValueError for
    --freeze on random weights (a frozen random base cannot learn: refused, not overridden)."""
    weights = base_weights(args)
    if weights is None and args.freeze:
        given = "--weights none" if args.weights else f"{args.model} (no published weights)"
        raise ValueError(
            f"--freeze with {given}: a frozen base with random weights cannot learn; drop "
            "--freeze (the whole network then trains from scratch) or give trained --weights"
        )
    alpha = {} if args.alpha is None else {"alpha": args.alpha}
    return dict(
        weights=weights,
        trained_classes=args.tclasses,
        image_size=args.size,
        freeze=args.freeze,
        dropout=args.dropout,
        learning_rate=args.learning_rate,
        **alpha,
    )


def distribution_of(args):
    """The strategy --distribute asks for (None: one device); says which devices it uses."""
    if args.distribute is None:
        if args.devices is not None:
            raise ValueError("--devices N goes with --distribute data-parallel")
        return None
    from keras_nets import distribution

    strategy = distribution.data_parallel(args.devices)
    names = distribution.device_names(strategy)
    print(f"training on {len(names)} device(s): {', '.join(names)}", flush=True)
    return strategy


def run(args):
    from keras_nets.core import registry

    if args.model not in registry.model_names():  # refused before Keras is imported
        return fail(
            "train",
            f"--model {args.model}: expected one of: {', '.join(registry.model_names())}",
            USAGE,
        )
    if args.size is not None and args.batch * args.size**2 > MAX_BATCH_PIXELS:
        most = max(1, MAX_BATCH_PIXELS // args.size**2)
        return fail(
            "train",
            f"--batch {args.batch} with --size {args.size}: {args.batch * args.size**2} pixels "
            f"per batch, more than {MAX_BATCH_PIXELS} fit in memory (at most --batch {most})",
            USAGE,
        )
    try:
        arguments = classifier_arguments(args)
        strategy = distribution_of(args)
        if arguments["weights"] is None:
            print(
                f"training {args.model} from scratch (random weights): the whole network trains, "
                "BatchNorm included",
                flush=True,
            )
        history = training.train_classifier(
            args.data_dir,
            args.output,
            base=args.model,
            classes=args.classes,
            epochs=args.epochs,
            batch_size=args.batch,
            seed=args.seed,
            overwrite=args.overwrite,
            # A progress bar on a terminal; in a log file (or a pipe), one plain line per epoch.
            verbose=1 if sys.stdout.isatty() else 2,
            augment=args.augment,
            distribution=strategy,
            **arguments,
        )
    except (ValueError, OSError, RuntimeError) as error:
        return fail("train", error, USAGE, FLAGS)
    print(training.summary(history, args.output))
    return OK
