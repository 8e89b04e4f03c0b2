"""Predict over a folder of JPEGs: end-to-end images/s against the model alone, and peak memory.

    python benchmarks/predict_folder.py                                  # docs/benchmarks.md's table
    python benchmarks/predict_folder.py --files 200 --memory-files 200 2000 --alpha 0.35 --size 96

The folder holds generated JPEGs (`--photo` pixels, default 500x375, the size of a typical
ImageNet photo, each different). The run is `keras_nets.folder_prediction.predict_folder`, the
`keras-nets predict --output` path: folders listed lazily, images decoded and resized by a thread
pool while the model predicts, one JSON line written per image. In the same run, the time spent
inside the model's predict calls is summed: files / that time is the model-only rate, the ceiling
the end-to-end rate is measured against. The first batch (compilation) is left out of both.

Peak memory: each `--memory-files` count is predicted in a fresh subprocess (a folder of that many
hard links to the generated JPEGs, so files cost no disk), whose peak resident memory
(ru_maxrss) is reported; a pipeline with bounded memory shows the same peak for every count.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling modules
from machine import cpu_description
from PIL import Image


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        if args.child:  # a peak_memory subprocess: predicts the folder it is given
            print(json.dumps(run(args, args.child, os.path.join(scratch, "out.jsonl"))))
            return
        originals = write_jpegs(os.path.join(scratch, "originals"), args.files, args.photo)
        rate = run(args, originals, os.path.join(scratch, "out.jsonl"))
        memory = [peak_memory(args, count, originals, scratch) for count in args.memory_files]
    print(table(args, rate, memory))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--alpha", type=float, default=None, help="width multiplier (MobileNets)")
    parser.add_argument("--size", type=int, default=None, help="input size (model's default)")
    parser.add_argument("--files", type=int, default=2000, help="JPEGs timed end to end (2000)")
    parser.add_argument("--photo", type=int, nargs=2, default=(500, 375), help="JPEG width height")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (CPU count)")
    parser.add_argument("--no-fast", dest="fast", action="store_false", help="plain model.predict")
    parser.add_argument(
        "--memory-files", type=int, nargs="*", default=[2000, 20000], help="file counts (memory)"
    )
    parser.add_argument("--child", metavar="FOLDER", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_jpegs(folder, count, photo):
    """`count` different JPEGs of `photo` = (width, height): smooth gradients with noise."""
    os.makedirs(folder, exist_ok=True)
    width, height = photo
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    base = x[..., None] * rng.uniform(-255, 255, 3) + y[..., None] * rng.uniform(-255, 255, 3)
    for i in range(count):
        pixels = np.clip(
            base * np.cos(i) + rng.uniform(0, 255, 3) + rng.normal(0, 20, base.shape), 0, 255
        )
        Image.fromarray(pixels.astype("uint8")).save(
            os.path.join(folder, f"{i:06d}.jpg"), quality=90
        )
    return folder


def classifier_for(args):
    from keras_nets import registry
    from keras_nets.prediction import Classifier, imagenet_decoder
    from keras_nets.preprocessing import eval_transform

    config = registry.get_config(args.model)
    size = args.size or config.default_size
    kwargs = {} if args.alpha is None else {"alpha": args.alpha}
    model = config.build(weights=None, input_shape=(size, size, 3), **kwargs)
    return Classifier(model, eval_transform(config, size=size), imagenet_decoder, fast=args.fast)


def run(args, folder, output):
    """{"end_to_end", "model_only"} images/s (first batch excluded), and the peak memory in MB."""
    from keras_nets.folder_prediction import predict_folder

    classifier = classifier_for(args)
    timed = {"model": 0.0, "images": 0, "start": None}
    predict = classifier.predict

    def timed_predict(images, top):
        started = time.perf_counter()
        result = predict(images, top)
        if timed["start"] is None:  # the first batch compiles: the clock starts after it
            timed["start"] = time.perf_counter()
        else:
            timed["model"] += time.perf_counter() - started
            timed["images"] += len(images)
        return result

    classifier.predict = timed_predict
    predict_folder([folder], output, classifier=classifier, batch=args.batch, workers=args.workers)
    total = time.perf_counter() - timed["start"]
    return {
        "end_to_end": timed["images"] / total,
        "model_only": timed["images"] / timed["model"],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def peak_memory(args, count, originals, scratch):
    """Peak resident MB of a fresh process predicting a folder of `count` files (hard links)."""
    folder = os.path.join(scratch, f"links_{count}")
    os.makedirs(folder)
    names = sorted(os.listdir(originals))
    for i in range(count):
        os.link(
            os.path.join(originals, names[i % len(names)]), os.path.join(folder, f"{i:06d}.jpg")
        )
    child = [sys.executable, __file__, "--child", folder, "--files", str(count)]
    child += ["--model", args.model, "--batch", str(args.batch), "--memory-files"]
    child += ["--alpha", str(args.alpha)] if args.alpha is not None else []
    child += ["--size", str(args.size)] if args.size is not None else []
    child += [] if args.fast else ["--no-fast"]
    done = subprocess.run(child, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return count, result


def table(args, rate, memory):
    name = (
        args.model
        + (f" alpha {args.alpha}" if args.alpha else "")
        + (f" {args.size} px" if args.size else "")
    )
    lines = [
        f"{name}, {'--fast' if args.fast else 'model.predict'}, batch {args.batch}, "
        f"{args.files} JPEGs of {args.photo[0]}x{args.photo[1]}, {os.cpu_count()} CPU(s): "
        f"{cpu_description()}",
        "",
        "| files | end-to-end images/s | model-only images/s | end-to-end / model-only | peak memory |",
        "|---:|---:|---:|---:|---:|",
        f"| {args.files} | {rate['end_to_end']:.1f} | {rate['model_only']:.1f} | "
        f"{rate['end_to_end'] / rate['model_only']:.0%} | {rate['peak_mb']:.0f} MB |",
    ]
    for count, result in memory:
        lines.append(
            f"| {count} | {result['end_to_end']:.1f} | {result['model_only']:.1f} | "
            f"{result['end_to_end'] / result['model_only']:.0%} | {result['peak_mb']:.0f} MB |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
