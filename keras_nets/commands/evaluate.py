"""`keras-nets evaluate`: measured top-1 / top-5 accuracy on a folder of labelled images.

    keras-nets evaluate ILSVRC2012/val --model resnet50            # ImageNet layout: n01440764/...
    keras-nets evaluate flowers/validation --weights run/model.keras --json eval.json

The work is `keras_nets.evaluation.evaluate`; this module reads arguments and prints. A file
that cannot be read is reported on stderr and skipped; the exit status is then 1. With `--json
OUT`, the numbers, per-class accuracy and the pipeline used go to OUT and, for up to 50 classes, a
confusion matrix to OUT's name with `_confusion.png` (needs matplotlib); an existing file is
replaced only with --overwrite.
"""

import argparse
import os
import pathlib
import sys

from keras_nets.commands._common import (
    FAILED,
    OK,
    USAGE,
    Progress,
    add_batch_and_fast,
    add_model_arguments,
    add_overwrite,
    announce_fast,
    fail,
    model_arguments_problem,
    model_options,
    positive_float,
    positive_int,
)


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="top-1 / top-5 accuracy on a folder of labelled images (e.g. ImageNet validation)",
        description="Measures top-1 and top-5 accuracy on DATA, one sub-folder per class: WordNet "
        "ids (n01440764, ...) for an ImageNet model, the class names of a trained model.keras. "
        "Images go through the model's evaluation pipeline (resize, centre crop, preprocessing).",
    )
    parser.add_argument("data", metavar="DATA", help="folder with one sub-folder per class")
    add_model_arguments(parser)
    add_batch_and_fast(parser)
    parser.add_argument(
        "--crop-pct",
        type=crop_fraction,
        default=None,
        metavar="F",
        help="centre-crop fraction (default: the model's own, 0.875 for Keras' published weights)",
    )
    parser.add_argument("--limit", type=positive_int, help="at most N images, every class in turn")
    parser.add_argument(
        "--json",
        metavar="OUT",
        help="write the results, per-class accuracy and the pipeline to OUT (JSON); for up to 50 "
        "classes also OUT_confusion.png",
    )
    add_overwrite(parser, "existing --json files")
    parser.set_defaults(run=run)


def crop_fraction(text):
    """argparse type: a number in [MIN_CROP_PCT, 1] (a smaller crop resizes the shorter side to
    more than twice the input size first: 1e-6 would ask for 224 million pixels a side)."""
    from keras_nets.images.transforms import MIN_CROP_PCT

    value = positive_float(text)
    if not MIN_CROP_PCT <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a fraction in [{MIN_CROP_PCT}, 1]")
    return value


def confusion_path(json_path):
    path = pathlib.Path(json_path)
    return path.with_name(f"{path.stem}_confusion.png")


def check_outputs(paths, overwrite):
    """An error line unless each path is new, or a regular file and --overwrite is given
    (`safe_files.overwrite_problem`)."""
    from keras_nets.core.safe_files import EXISTS, overwrite_problem

    for path in paths:
        problem = overwrite_problem(path, overwrite)
        if problem == EXISTS:
            return f"--json {path}: exists; choose another name, or replace it (--overwrite)"
        if problem:
            return f"--json {path}: exists and is {problem}, not a regular file; not replaced"
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            return f"--json {path}: its directory does not exist"
    return None


def run(args):
    problem = model_arguments_problem(args)
    if problem:
        return fail("evaluate", problem, USAGE)

    from keras_nets import evaluation
    from keras_nets.core.safe_files import write_json

    if args.json is not None:
        problem = check_outputs([args.json, confusion_path(args.json)], args.overwrite)
        if problem:
            return fail("evaluate", problem, USAGE)
    elif args.overwrite:
        return fail("evaluate", "--overwrite goes with --json OUT", USAGE)

    progress = None

    def advance(done, total):
        nonlocal progress
        progress = progress or Progress(total, enabled=True)
        progress.advance(done - progress.done)

    def report(error):
        if progress is None:
            print(f"{error}; skipped", file=sys.stderr)
        else:
            progress.message(f"{error}; skipped")

    announce_fast("evaluate", args)
    try:
        options = model_options(args)
        result = evaluation.evaluate(
            options.pop("model"),
            args.data,
            **options,
            batch=args.batch,
            limit=args.limit,
            progress=advance,
            on_error=report,
        )
    except (ValueError, OSError, RuntimeError) as error:
        return fail("evaluate", error, USAGE, {"data_dir": "DATA", "crop_pct": "--crop-pct"})
    if progress is not None:
        progress.close()

    unread = f" ({len(result.failed)} could not be read)" if result.failed else ""
    print(f"images: {result.images}{unread}")
    print(f"top-1:  {percent(result.top1)}")
    print(f"top-5:  {'n/a (see the note)' if result.notes else percent(result.top5)}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"images/s: {result.images_per_second:.1f}")
    print(f"pipeline: {describe(result.pipeline)}", flush=True)

    if args.json is not None:
        write_json(args.json, result.as_dict())
        if result.confusion is not None:
            try:
                evaluation.write_confusion_png(result, confusion_path(args.json))
            except ImportError:
                print(
                    "keras-nets evaluate: matplotlib is not installed; no confusion matrix "
                    "drawn (pip install matplotlib)",
                    file=sys.stderr,
                )
    if result.failed:
        print(
            f"keras-nets evaluate: {len(result.failed)} image(s) could not be read", file=sys.stderr
        )
        return FAILED
    return OK


def percent(fraction):
    return "n/a (no image read)" if fraction is None else f"{fraction:.2%}"


def describe(pipeline):
    crop = pipeline["crop_pct"]
    resize = (
        f"whole image to {pipeline['size']}x{pipeline['size']}"
        if crop is None
        else f"shorter side to {pipeline['resize_shorter_side_to']}, central "
        f"{pipeline['size']}x{pipeline['size']} (crop_pct {crop:g})"
    )
    return f"{resize}, {pipeline['interpolation']}, preprocessing {pipeline['preprocessing']}"
