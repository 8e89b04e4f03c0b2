"""`keras-nets explain`: Grad-CAM pictures of where a model found each of its top classes.

    keras-nets explain elephant.jpg --output cams/                # Xception, its top class
    keras-nets explain photos/ --model resnet50 --top 3 --output cams/
    keras-nets explain elephant.jpg --class tusker --output cams/ # or --class 101, n01871265
    keras-nets explain photo.jpg --weights run/model.keras --output cams/ --json

For each image and class it writes OUTPUT/<image name>_<label>.png, the photo with the heatmap of
`keras_nets.explain.grad_cam` blended in (`explain.overlay`), and prints the label and the score
(probability) the heatmap explains. Images, models and weights are read as `keras-nets predict`
reads them (`keras_nets.prediction.Classifier`), with the same errors and exit statuses. A file
already in OUTPUT is never replaced unless --overwrite is given; each picture appears under its
name only once complete.
"""

import json
import os
import pathlib
import re
import sys

import numpy as np

from keras_nets.commands._common import (
    FAILED,
    OK,
    USAGE,
    add_image_inputs,
    add_json_lines,
    add_model_arguments,
    add_overwrite,
    fail,
    find_images_or_report,
    model_arguments_problem,
    model_options,
    positive_int,
)
from keras_nets.core.safe_files import EXISTS, overwrite_problem
from keras_nets.core.scores import NaNScoresError, refuse_nan
from keras_nets.images.files import ImageError, read_image
from keras_nets.prediction import Classifier


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "explain",
        help="Grad-CAM heatmaps of the top classes of images, as PNG overlays",
        description="Writes, per image and class, the photo with its Grad-CAM heatmap blended in; "
        "directories are walked for images (hidden files skipped).",
    )
    add_image_inputs(parser)
    parser.add_argument("--output", required=True, metavar="DIR", help="where the PNGs go")
    add_model_arguments(parser)
    parser.add_argument(
        "--class",
        dest="class_",
        default=None,
        metavar="LABEL_OR_INDEX",
        help="explain this class (a label, a WordNet id or an index) instead of the top ones",
    )
    parser.add_argument("--top", type=positive_int, default=1, help="top classes explained (1)")
    add_json_lines(parser)
    add_overwrite(parser, "PNGs already in the output directory")
    parser.set_defaults(run=run)


def run(args):
    problem = model_arguments_problem(args)
    if problem:
        return fail("explain", problem, USAGE)

    from keras_nets import explain

    output = pathlib.Path(args.output)
    problem = output_problem(output)
    if problem:
        return fail("explain", f"--output {output}: {problem}", USAGE)
    sources, problems = find_images_or_report(args.inputs)
    failed = len(problems)
    if not sources:
        return fail("explain", "no images found", FAILED)
    try:
        predictor = Classifier.load(**model_options(args))
        labels = class_labels(predictor)
        wanted = None if args.class_ is None else class_of(args.class_, labels)
        explain.default_layer(predictor.model)  # a model Grad-CAM cannot split fails here
    except (ValueError, OSError, RuntimeError) as error:
        return fail("explain", error, USAGE)
    created = [folder for folder in (output, *output.parents) if not os.path.lexists(folder)]
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return fail("explain", f"--output {output}: cannot be created ({error.strerror})", USAGE)

    written, saved = set(), 0
    for source in sources:
        try:
            photo = read_image(source)
        except ImageError as error:
            print(f"{error}; skipped", file=sys.stderr)
            failed += 1
            continue
        explanations = []
        try:
            explained = explain_image(predictor, photo, wanted, args.top, source)
        except NaNScoresError as error:  # a broken model: every other image would fail the same
            return fail("explain", error, USAGE)
        for index, score, heatmap in explained:
            wnid, label = labels[index]
            path = output / unique_name(picture_name(source, label), written)
            problem = overwrite_problem(path, args.overwrite)
            if problem:
                why = "exists" if problem == EXISTS else f"{problem}, not a regular file"
                print(f"{path}: {why}; not replaced (--overwrite replaces it)", file=sys.stderr)
                failed += 1
                continue
            try:
                write_png(path, explain.overlay(photo, heatmap))
            except OSError as error:  # read-only, full disk: every next picture would fail too
                if explanations:
                    show(source, explanations, as_json=args.json)
                if not saved:
                    remove_empty(created)
                status = FAILED if saved else USAGE
                return fail("explain", f"{path}: cannot be written ({error.strerror})", status)
            saved += 1
            explanations.append((index, wnid, label, score, path))
        show(source, explanations, as_json=args.json)
    if failed:
        print(f"keras-nets explain: {failed} input(s) or picture(s) failed", file=sys.stderr)
    return FAILED if failed else OK


def output_problem(output):
    """None if `output` is a directory or can be made one, else why not (without making it)."""
    if os.path.lexists(output):
        return None if output.is_dir() else "not a directory"
    for parent in output.parents:
        if os.path.lexists(parent):
            if parent.is_dir():
                return None
            return f"cannot be created: {parent} is not a directory"
    return None


def remove_empty(folders):
    """Removes the folders this run created (deepest first) that hold nothing."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def explain_image(predictor, photo, wanted, top, source=None):
    """[(class index, probability, heatmap at the photo's size), ...] for one RGB photo; a
    NaNScoresError naming `source` if the model's scores for it are NaN."""
    from keras import ops
    from PIL import Image

    from keras_nets import explain

    # The whole photo, resized without predict's centre crop, so the heatmap covers all of it.
    height, width = predictor.size
    resized = Image.fromarray(photo).resize((width, height), Image.Resampling.BILINEAR)
    batch = predictor.transform.preprocess(np.asarray(resized, dtype="float32")[None])
    # A direct call: `predict` would first trace a graph, seconds for one image.
    probabilities = ops.convert_to_numpy(predictor.model(batch, training=False))
    refuse_nan(
        probabilities, None if source is None else [source]
    )  # no top class, and Grad-CAM of NaN explains nothing
    probabilities = probabilities[0]
    indices = [wanted] if wanted is not None else list(np.argsort(probabilities)[::-1][:top])
    results = []
    for index in indices:
        heatmap = explain.grad_cam(predictor.model, batch, class_index=int(index))[0]
        results.append((int(index), float(probabilities[index]), heatmap))
    return results


def class_labels(predictor):
    """[(WordNet id or None, label), ...] by class index, as the classifier decodes them."""
    count = int(predictor.model.outputs[0].shape[-1])
    return [tuple(best[0][:2]) for best in predictor.decode(np.eye(count), 1)]


def class_of(text, labels):
    """The class index `--class` names: an index, a WordNet id or a label (unambiguous)."""
    if text.isdigit():
        if int(text) < len(labels):
            return int(text)
        raise ValueError(f"--class {text}: expected a class index below {len(labels)}")
    matches = [i for i, (wnid, label) in enumerate(labels) if text in (wnid, label)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(
            f"--class {text}: names classes {', '.join(map(str, matches))}; pass the index"
        )
    raise ValueError(f"--class {text}: not a class label, WordNet id or index of this model")


def picture_name(source, label):
    """ "<image name without suffix>_<label>.png", with characters unsafe in file names as _."""
    stem = pathlib.PurePosixPath(str(source).split("?")[0]).stem or "image"
    return re.sub(r"[^\w.-]+", "_", f"{stem}_{label}") + ".png"


def unique_name(name, taken):
    """`name`, or `name` with _2, _3... when an earlier image of this run gave the same name."""
    stem, suffix = os.path.splitext(name)
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}_{n}{suffix}"
    taken.add(candidate)
    return candidate


def write_png(path, pixels):
    from PIL import Image

    from keras_nets.core.safe_files import atomic_path

    with atomic_path(path) as partial:
        Image.fromarray(pixels).save(partial, format="PNG")


def show(source, explanations, as_json):
    if as_json:
        record = {
            "image": str(source),
            "explanations": [
                {"index": i, "wnid": wnid, "label": label, "score": score, "heatmap": str(path)}
                for i, wnid, label, score, path in explanations
            ],
        }
        print(json.dumps(record), flush=True)
        return
    print(source)
    for _, wnid, label, score, path in explanations:
        print(f"  {label:<28} {wnid or '':<10} {score:8.2%}  {path}")
    print(flush=True)
