"""What every `keras-nets` command shares: argument types, error lines and exit codes.

Each command is one module in `keras_nets.commands` with two functions (see `keras_nets.cli`):
`add_parser(subparsers)` and `run(args) -> exit code`. Errors reach the user as one line on
stderr, "keras-nets COMMAND: error: MESSAGE", never as a traceback.
"""

import argparse
import math
import sys

OK = 0
FAILED = 1  # some inputs could not be processed; the others were
USAGE = 2  # bad arguments or input: nothing was done (argparse uses 2 too)
INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
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
    """--model and --weights, as `keras_nets.prediction.Classifier.load` takes them."""
    from keras_nets.prediction import DEFAULT_MODEL, IMAGENET

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


def add_batch_and_fast(parser):
    """--batch N and --fast, for a command that runs a model over images in batches."""
    parser.add_argument("--batch", type=positive_int, default=32, help="images per batch (32)")
    parser.add_argument(
        "--fast", action="store_true", help="predict through keras_nets.compile_for_inference"
    )


def add_overwrite(parser, what):
    """--overwrite: the user's explicit permission to replace `what`, which is refused otherwise
    (keras-nets never replaces a file it did not just write unless asked)."""
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what}")


def find_images_or_report(inputs):
    """`image_files.find_images(inputs)`, each missing input reported on stderr: (images, missing).

    Also makes stdout escape what the terminal cannot encode (a file name in Latin-1 bytes, say)
    instead of stopping at the first such name with a UnicodeEncodeError.
    """
    from keras_nets.image_files import find_images

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    images, missing = find_images(inputs)
    for item in missing:
        print(f"{item}: no such file or directory", file=sys.stderr)
    return images, missing


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
