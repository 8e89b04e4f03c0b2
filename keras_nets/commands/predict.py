"""`keras-nets predict`: the top classes of photos, for an ImageNet model or one you trained.

    keras-nets predict elephant.jpg                       # Xception, ImageNet weights
    keras-nets predict photos/ --model resnet50 --json    # a directory, one JSON line per image
    keras-nets predict photo.jpg --weights run/model.keras  # a model saved by `keras-nets train`
    keras-nets predict https://i.imgur.com/Bvro0YD.png    # an image URL, read into memory

The work is `keras_nets.prediction.Classifier`; this module reads arguments and prints. A file
that is not a readable image (or not a regular file: FIFOs are never opened) is reported on
stderr by name and skipped; the exit status is then 1.
"""

import json
import os
import sys

from keras_nets.commands._common import (
    FAILED,
    OK,
    USAGE,
    Progress,
    add_batch_and_fast,
    add_image_inputs,
    add_json_lines,
    add_model_arguments,
    add_overwrite,
    announce_fast,
    fail,
    find_images_or_report,
    model_arguments_problem,
    model_options,
    positive_int,
)
from keras_nets.prediction import Classifier, ScoresError


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="top-k classes of images or directories of images",
        description="Predicts the top classes of each image; directories are walked for images "
        "(hidden files skipped); http(s) URLs are downloaded.",
    )
    add_image_inputs(parser)
    add_model_arguments(parser)
    parser.add_argument("--top", type=positive_int, default=5, help="classes shown per image (5)")
    add_json_lines(parser)
    add_batch_and_fast(parser)
    parser.add_argument(
        "--int8",
        action="store_true",
        help="with --fast: run the model quantized to int8, calibrated on --calibration's images",
    )
    parser.add_argument(
        "--calibration",
        metavar="DIR",
        help="with --int8: a folder of at least 32 images like the ones to predict (64 of them "
        "are used, spread evenly), read through the model's own pipeline",
    )
    parser.add_argument(
        "--output",
        metavar="RESULTS.jsonl",
        help="append one JSON line per image to this file as it is predicted (large folders: "
        "listed lazily, decoded in parallel); nothing is printed per image",
    )
    parser.add_argument(
        "--resume", action="store_true", help="with --output: skip the images already in it"
    )
    add_overwrite(parser, "an existing --output file (or, with --engine, directory)")
    parser.add_argument(
        "--engine",
        choices=("local", "spark", "dask"),
        default="local",
        help="with --output OUT.parquet or OUT.jsonl: predict on Spark or Dask into a directory "
        "of Parquet or JSON-lines files (local: this process, into one JSON-lines file)",
    )
    parser.add_argument(
        "--master",
        metavar="URL",
        help="with --engine spark: Spark's master (default: this machine's cores, on 127.0.0.1)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: a Dask scheduler's address (default: a local cluster of one "
        "worker per core, on 127.0.0.1)",
    )
    parser.set_defaults(run=run)


def run(args):
    problem = model_arguments_problem(args) or check_int8(args)
    if problem:
        return fail("predict", problem, USAGE)
    if args.engine != "local" or args.master or args.scheduler:
        return run_on_engine(args)
    if args.output is not None:
        return run_into_file(args)
    if args.resume or args.overwrite:
        return fail("predict", "--resume and --overwrite go with --output RESULTS.jsonl", USAGE)
    sources, problems = find_images_or_report(args.inputs)
    failed = len(problems)
    if not sources:
        return fail("predict", "no images found", FAILED)
    announce_fast("predict", args)
    try:
        predictor = Classifier.load(**model_options(args))
    except (ValueError, OSError, RuntimeError) as error:
        return fail("predict", error, USAGE, {"calibration": "--calibration"})

    progress = Progress(len(sources), enabled=any(os.path.isdir(item) for item in args.inputs))
    try:
        for result in predictor.predict_files(sources, args.top, args.batch):
            if result.error is not None:
                progress.message(f"{result.error}; skipped")
                failed += 1
            else:
                progress.clear()
                show(result.source, result.predictions, as_json=args.json)
            progress.advance(1)
    except ScoresError as error:
        progress.clear()
        return fail("predict", f"--weights {args.weights}: {error}", USAGE)
    progress.close()
    if failed:
        print(f"keras-nets predict: {failed} input(s) could not be read", file=sys.stderr)
    return FAILED if failed else OK


def run_into_file(args):
    """`predict --output`: `prediction.predict_folder`, a summary line on stderr."""
    from keras_nets.prediction.folders import predict_folder

    announce_fast("predict", args)
    try:
        counts = predict_folder(
            args.inputs,
            args.output,
            **model_options(args),
            top=args.top,
            batch=args.batch,
            resume=args.resume,
            overwrite=args.overwrite,
        )
    except ScoresError as error:
        return fail("predict", f"--weights {args.weights}: {error}", USAGE)
    except (ValueError, OSError, RuntimeError) as error:
        return fail("predict", error, USAGE, {"output": "--output", "calibration": "--calibration"})
    for item in counts["missing"]:
        print(f"{item}: no such file or directory", file=sys.stderr)
    print(
        f"keras-nets predict: {counts['predicted']} image(s) predicted into {args.output}, "
        f"{counts['skipped']} already there, {counts['failed']} could not be read",
        file=sys.stderr,
    )
    return FAILED if counts["failed"] or counts["missing"] else OK


def run_on_engine(args):
    """`predict --engine spark|dask --output OUT`: `batch.write_predictions`, a summary line."""
    import importlib.util

    from keras_nets.batch import writing

    problem = engine_problem(args) or writing.check_output(args.output, args.overwrite)
    if problem:
        return fail("predict", problem, USAGE)
    module = {"spark": "pyspark", "dask": "distributed"}[args.engine]
    if importlib.util.find_spec(module) is None:
        extra = f"pip install 'keras-nets[{args.engine}]'"
        return fail("predict", f"--engine {args.engine} needs {module}: {extra}", USAGE)
    from keras_nets.batch import Predictor

    options = model_options(args)
    calibration = options.pop("calibration")
    try:
        predictor = Predictor(
            **options, int8=args.int8, calibration=calibration, top=args.top, batch=args.batch
        )
        announce_fast("predict", args)
        counts = writing.write_predictions(
            args.engine,
            args.inputs,
            args.output,
            predictor,
            overwrite=args.overwrite,
            connect=args.master or args.scheduler,
        )
    except ScoresError as error:
        return fail("predict", f"--weights {args.weights}: {error}", USAGE)
    except (ValueError, OSError, RuntimeError) as error:
        return fail("predict", error, USAGE)
    print(
        f"keras-nets predict: {counts['predicted']} image(s) predicted into {args.output} on "
        f"{args.engine}, {counts['failed']} could not be read",
        file=sys.stderr,
    )
    return FAILED if counts["failed"] else OK


def engine_problem(args):
    """None, or what is wrong with --engine, --master and --scheduler."""
    if args.master and args.engine != "spark":
        return "--master goes with --engine spark"
    if args.scheduler and args.engine != "dask":
        return "--scheduler goes with --engine dask"
    if args.output is None:
        return f"--engine {args.engine} writes to --output OUT.parquet or OUT.jsonl (a directory)"
    if args.resume:
        return f"--resume goes with --engine local (--engine {args.engine} writes OUT whole)"
    if args.weights.lower() == "none":
        return "--weights none: random weights would differ on every worker; give a file"
    for item in args.inputs:  # a URI (hdfs://, s3a://...) is the engine's to find
        if "://" not in item and not os.path.exists(item):
            return f"{item}: no such file or directory"
    return None


def check_int8(args):
    """None, or what is wrong with --int8 and --calibration: they go together, with --fast."""
    if args.int8 and not args.fast:
        return "--int8 goes with --fast (int8 runs on the fast path)"
    if args.int8 and args.calibration is None:
        return "--int8 needs --calibration DIR: a folder of at least 32 images to calibrate on"
    if args.calibration is not None and not args.int8:
        return "--calibration goes with --int8 (and --fast)"
    return None


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
