"""What every `keras-nets` command shares: argument types, error lines and exit codes.

Each command is one module in `keras_nets.commands` with two functions (see `keras_nets.cli`):
`add_parser(subparsers)` and `run(args) -> exit code`. Errors reach the user as one line on
stderr, "keras-nets COMMAND: error: MESSAGE", never as a traceback.
"""

import argparse
import math
import os
import sys

OK = 0
FAILED = 1  # some inputs could not be processed; the others were
USAGE = 2  # bad arguments or input: nothing was done (argparse uses 2 too)
INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
# Images per batch, at most: a batch of 512 ImageNet-sized inputs is already 0.5 GB of float32
# pixels, three of them in flight while predicting, before the model's activations.
MAX_BATCH = 512
TERMINATED = 143  # SIGTERM (kill, docker stop), as a shell reports it (128 + 15)


def positive_int(text):
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer")
    return value


def bounded_positive_int(maximum):
    """argparse type: an integer from 1 to `maximum`."""

    def parse(text):
        value = positive_int(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{text!r}: expected at most {maximum}")
        return value

    return parse


def positive_float(text):
    """argparse type: a finite number above 0 (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number above 0")
    return value


def add_image_inputs(parser):
    """The positional IMAGE_OR_DIR... of a command that reads images (`find_images_or_report`)."""
    parser.add_argument(
        "inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files, directories or URLs"
    )


def add_model_arguments(parser):
    """--model, --weights, --alpha and --size, as `keras_nets.prediction.Classifier.load` takes
    them; `model_arguments_problem` checks them without importing Keras, `model_options` passes
    them on."""
    from keras_nets.images.transforms import MAX_IMAGE_SIZE
    from keras_nets.prediction import DEFAULT_MODEL, IMAGENET

    parser.add_argument(
        "--model",
        default=None,
        help=f"registry name of the network (default {DEFAULT_MODEL}); keras_nets.list_models()",
    )
    parser.add_argument(
        "--weights",
        default=IMAGENET,
        metavar="imagenet|none|PATH",
        help="'imagenet' (published weights, downloaded once), 'none' (random weights), a .h5 "
        "weights file for --model, or a model.keras saved by `keras-nets train` (labels from its "
        "class_names.json)",
    )
    parser.add_argument(
        "--alpha", type=positive_float, default=None, help="width multiplier (MobileNets)"
    )
    parser.add_argument(
        "--size",
        type=bounded_positive_int(MAX_IMAGE_SIZE),
        default=None,
        help="input height and width (the model's default)",
    )


def model_arguments_problem(args):
    """None, or what is wrong with --model, --weights, --alpha and --size: the registry's names,
    sizes and builder arguments are read from the model modules' source, so a bad argument is
    refused in a fraction of a second, before Keras is imported."""
    from keras_nets.core import registry
    from keras_nets.prediction import DEFAULT_MODEL

    weights = args.weights
    if weights.endswith(".keras") and not os.path.isfile(weights):
        return f"--weights {weights}: no such model file (a model.keras saved by keras-nets train)"
    if weights.lower() not in ("imagenet", "none") and not os.path.isfile(weights):
        return (
            f"--weights {weights}: expected imagenet, none, or the path of an existing weights "
            "file (.h5) or model.keras"
        )
    if weights.endswith(".keras"):  # its own network and size; --model is ignored
        given = [flag for flag in ("alpha", "size") if getattr(args, flag) is not None]
        if given:
            return f"--{given[0]} goes with a registry model, not with a trained model.keras"
        return None
    name = args.model or DEFAULT_MODEL
    if name not in registry.model_names():
        return f"--model {name}: expected one of: {', '.join(registry.model_names())}"
    facts = registry.declared(name)
    if facts is None:  # registered from outside the package: its builder checks the rest
        return None
    if weights.lower() == "imagenet" and not facts["published_weights"]:
        return f"--weights imagenet: no published weights exist for {name}; use none or a file"
    if args.alpha is not None and "alpha" not in facts["parameters"]:
        declared = [registry.declared(n) or {} for n in registry.model_names()]
        with_alpha = [
            n
            for n, facts in zip(registry.model_names(), declared)
            if "alpha" in facts.get("parameters", ())
        ]
        return f"--alpha goes with {', '.join(with_alpha)}, not with {name}"
    if args.size is not None and args.size < facts["min_size"]:
        return f"--size {args.size}: expected at least {facts['min_size']} for {name}"
    return None


# `Classifier.load`'s keywords that only some commands have a flag for (--fast, --crop-pct,
# --calibration); `model_options` passes on those the command has.
LOAD_FLAGS = ("fast", "crop_pct", "calibration")


def model_options(args):
    """`Classifier.load`'s keywords from the command line: model, weights, alpha and size, and
    fast, crop_pct and calibration where the command has those flags. What `evaluate` and
    `predict_folder` pass on to it, too."""
    weights = None if args.weights.lower() == "none" else args.weights
    if weights is not None and weights.lower() == "imagenet":
        weights = "imagenet"
    options = dict(model=args.model, weights=weights, alpha=args.alpha, size=args.size)
    options.update({name: getattr(args, name) for name in LOAD_FLAGS if hasattr(args, name)})
    return options


def add_batch_and_fast(parser):
    """--batch N and --fast, for a command that runs a model over images in batches."""
    parser.add_argument(
        "--batch",
        type=bounded_positive_int(MAX_BATCH),
        default=32,
        help=f"images per batch (32; at most {MAX_BATCH})",
    )
    parser.add_argument(
        "--fast", action="store_true", help="predict through keras_nets.compile_for_inference"
    )


def announce_fast(command, args):
    """With --fast, one line on stderr saying what the first seconds are spent on: converting the
    model (and with --int8 quantizing it) before the first image is predicted."""
    if not args.fast:
        return
    int8 = getattr(args, "int8", False)
    what = (
        "converting it and quantizing it to int8 on the --calibration images"
        if int8
        else ("converting it")
    )
    print(
        f"keras-nets {command}: --fast: loading the model and {what} for the fast path "
        "(keras_nets.compile_for_inference): a few seconds the first time, then a fraction of a "
        "second from the compiled-model cache (`keras-nets cache list`)",
        file=sys.stderr,
        flush=True,
    )


def add_json_lines(parser):
    """--json: each image's results printed as one JSON object per line instead of as text."""
    parser.add_argument("--json", action="store_true", help="one JSON object per image and line")


def add_overwrite(parser, what):
    """--overwrite: the user's explicit permission to replace `what`, which is refused otherwise
    (keras-nets never replaces a file it did not just write unless asked)."""
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what}")


def find_images_or_report(inputs):
    """`image_files.find_images(inputs)`, each missing input and each folder that cannot be
    listed reported on stderr (the other folders are walked): (images, problems), `problems`
    the inputs and folders reported.

    Also makes stdout escape what the terminal cannot encode (a file name in Latin-1 bytes, say)
    instead of stopping at the first such name with a UnicodeEncodeError.
    """
    from keras_nets.images.files import find_images

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    unlisted = []

    def report(folder, message):
        print(message, file=sys.stderr)
        unlisted.append(folder)

    images, missing = find_images(inputs, on_error=report)
    for item in missing:
        print(f"{item}: no such file or directory", file=sys.stderr)
    return images, missing + unlisted


def human_size(size):
    """A byte count as people read it: "88.0 MB", "417.0 kB"."""
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def fail(command, message, status=USAGE, flags=None):
    """Prints `message` as one error line of `keras-nets COMMAND`; returns `status`.

    `flags` maps a library argument name to its command-line flag ({"image_size": "--size"}), so
    a library message "image_size=9999: ..." reads "--size 9999: ..." on the command line.
    """
    message = str(message)
    for name, flag in (flags or {}).items():
        message = message.replace(f"{name}=", f"{flag} ")
    print(f"keras-nets {command}: error: {message}", file=sys.stderr)
    return status


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
