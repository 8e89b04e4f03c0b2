"""`keras-nets train`: a classifier on your own folders of images, on a frozen ImageNet base.

    keras-nets train flowers/ --model mobilenet_v2 --classes 5 --epochs 10 --output run/

DATA_DIR holds `train/<class>/*` and `validation/<class>/*`. The classifier is
`keras_nets.finetune.build_classifier`: the model's own preprocessing, its base frozen with
BatchNorm in inference mode, a new dropout + Dense head. `--weights PATH --tclasses T` continues
from a model trained earlier on T classes, replacing only its classifier layer. The dataset is
checked completely before any training starts. Written to --output: model.keras (after the last
epoch), best.keras (lowest validation loss), class_names.json and history.json.
"""

import argparse
import json
import os
import pathlib
import sys

from keras_nets.commands.predict import positive_int
from keras_nets.image_files import IMAGE_EXTENSIONS

SPLITS = ("train", "validation")
MAX_LISTED = 10  # unreadable files named in the error, at most


class DatasetError(ValueError):
    """DATA_DIR is not a dataset `keras-nets train` can train on; the message says why."""


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a classifier on DATA_DIR/train/<class>/* with a frozen ImageNet base",
        description="Trains a classifier on DATA_DIR/train/<class>/*, validating on "
        "DATA_DIR/validation/<class>/*, and saves it to --output.",
    )
    parser.add_argument("data_dir", metavar="DATA_DIR", help="folder with train/ and validation/")
    parser.add_argument("--model", required=True, help="registry name of the base network")
    parser.add_argument("--classes", type=positive_int, required=True, help="number of classes")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the results")
    parser.add_argument("--batch", type=positive_int, default=32, help="batch size (32)")
    parser.add_argument("--epochs", type=positive_int, default=10, help="epochs (10)")
    parser.add_argument(
        "--size", type=positive_int, default=None, help="input height and width (model's default)"
    )
    parser.add_argument(
        "--weights",
        default="imagenet",
        metavar="imagenet|none|PATH",
        help="base weights: 'imagenet', 'none' (random) or a notop .h5 file; with --tclasses, or "
        "a .keras file, a classifier trained earlier",
    )
    parser.add_argument(
        "--tclasses",
        type=positive_int,
        default=None,
        metavar="T",
        help="--weights is a classifier trained on T classes: keep all but its classifier layer",
    )
    parser.add_argument(
        "--freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="freeze the base network, train only the new head (default: --freeze)",
    )
    parser.add_argument("--alpha", type=float, default=None, help="width multiplier (MobileNets)")
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam learning rate (0.001)"
    )
    parser.add_argument(
        "--dropout", type=float, default=0.2, help="dropout rate before the classifier (0.2)"
    )
    parser.add_argument(
        "--seed", type=int, default=1337, help="seed of the shuffling and the new layers (1337)"
    )
    parser.set_defaults(run=run)


def run(args):
    try:
        class_names = check_dataset(args.data_dir, args.classes)
        import keras

        keras.utils.set_random_seed(args.seed)  # the same run twice gives the same model
        model = build_model(args)
    except (DatasetError, ValueError, OSError, RuntimeError) as error:
        print(f"keras-nets train: error: {error}", file=sys.stderr)
        return 2

    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    size = tuple(model.input_shape[1:3])
    train, validation = (
        keras.utils.image_dataset_from_directory(
            os.path.join(args.data_dir, split),
            class_names=class_names,
            image_size=size,
            batch_size=args.batch,
            shuffle=split == "train",
            seed=args.seed,
        )
        for split in SPLITS
    )
    checkpoint = keras.callbacks.ModelCheckpoint(
        output / "best.keras", monitor="val_loss", save_best_only=True
    )
    history = model.fit(
        train,
        validation_data=validation,
        epochs=args.epochs,
        callbacks=[checkpoint],
        shuffle=False,  # the training dataset reshuffles itself every epoch
        verbose=1,
    )

    model.save(output / "model.keras")
    write_json(output / "class_names.json", class_names)
    write_json(
        output / "history.json",
        {key: [float(v) for v in values] for key, values in history.history.items()},
    )
    print(f"saved {output / 'model.keras'}, best.keras, class_names.json and history.json")
    return 0


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def build_model(args):
    """The classifier to train, from --model/--weights/--tclasses/--freeze; nothing trained yet."""
    from keras_nets import finetune

    base_kwargs = {} if args.alpha is None else {"alpha": args.alpha}
    common = dict(image_size=args.size, dropout=args.dropout, **base_kwargs)
    weights = None if args.weights.lower() == "none" else args.weights
    if weights is not None and weights != "imagenet" and not os.path.isfile(weights):
        raise ValueError(f"--weights {weights}: no such file")

    if str(weights).endswith(".keras"):
        model = load_classifier(weights, args.tclasses, args.size)
    elif args.tclasses is not None:
        if weights in (None, "imagenet"):
            raise ValueError(
                f"--tclasses {args.tclasses} continues from a trained classifier: give its file "
                "with --weights PATH (a model.keras or a .weights.h5 saved from it)"
            )
        model = finetune.build_classifier(args.model, args.tclasses, weights=None, **common)
        model.load_weights(weights)
    else:
        model = finetune.build_classifier(args.model, args.classes, weights=weights, **common)

    if args.tclasses is not None or model.output_shape[-1] != args.classes:
        model = finetune.replace_classifier(model, args.classes)
    finetune.set_base_frozen(model, args.freeze, learning_rate=args.learning_rate)
    return model


def load_classifier(path, tclasses, size):
    from keras_nets import finetune

    try:
        model = finetune.load_trained(path)
    except ValueError as error:
        raise ValueError(f"--weights {error}") from None
    trained_classes = model.output_shape[-1]
    if tclasses is not None and tclasses != trained_classes:
        raise ValueError(f"--tclasses {tclasses}: {path} was trained on {trained_classes} classes")
    if size is not None and tuple(model.input_shape[1:3]) != (size, size):
        raise ValueError(
            f"--size {size}: {path} takes {model.input_shape[1]}x{model.input_shape[2]} images"
        )
    return model


def check_dataset(data_dir, classes):
    """The class names (folder names, in label order), or a DatasetError for a bad DATA_DIR.

    Checks that both splits exist and hold the same `classes` class folders, that every class
    has images, and that every image decodes the way the training pipeline will decode it.
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
            images = list_images(split_dir / name)
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


def list_images(class_dir):
    """The files `keras.utils.image_dataset_from_directory` takes from one class folder."""
    return [
        pathlib.Path(root, name)
        for root, _, names in sorted(os.walk(class_dir))
        for name in sorted(names)
        if name.lower().endswith(IMAGE_EXTENSIONS)
    ]


def decode_problem(path):
    """(path, None) if TensorFlow decodes the image as training will, else (path, the reason)."""
    import tensorflow as tf

    try:
        tf.image.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        return path, getattr(error, "message", str(error)).strip().splitlines()[0]
    return path, None
