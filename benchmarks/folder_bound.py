"""Predicting a folder against its two-stage bound: decoding and the model sharing the same cores.

    python benchmarks/folder_bound.py                        # docs/benchmarks.md's folder table
    python benchmarks/folder_bound.py --files 64 --photos 640x480

Two stages share the machine's cores: decoding (JPEG decode, resize, crop; D images/s when it runs
alone on all cores, through `decoded_batches`' thread pool) and the model (M images/s alone on all
cores, batch 32, the fast path `keras_nets.compile_for_inference` on ONNX Runtime). Perfectly
overlapped, each image costs 1/D + 1/M seconds of the whole machine: the bound is
1/(1/D + 1/M) images/s. End to end is `predict_folder(..., fast=True)` (the
`keras-nets predict --output` path) over the same folder; the ratio is end to end / bound. D, M and end to end are
measured in turns, `--repeats` times; the table shows their medians.

Each photo size is run twice: reading JPEGs in full (`transform(read_image(path))`) and drafted
(`EvalTransform.read`: decoded at the smallest scale that keeps the resize target). The folder
holds `--files` JPEGs per size, made from the sample photo shipped with keras-nets (upscaled,
shifted, with noise like a camera's so that they compress like photos), each different.
"""

import argparse
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling modules
from machine import cpu_description, markdown_table
from PIL import Image

BATCH = 32


def main(argv=None):
    args = parse_args(argv)
    classifier = classifier_for(args)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for width, height in args.photos:
            folder = write_photos(
                os.path.join(scratch, f"{width}x{height}"), args.files, width, height
            )
            files = sorted(os.path.join(folder, name) for name in os.listdir(folder))
            # in turns, so that a shared machine's load weighs on D, M and end to end alike
            measured = {reading: [] for reading in readers(classifier.transform)}
            for _ in range(args.repeats):
                for reading, read in readers(classifier.transform).items():
                    measured[reading].append(
                        (
                            decoding_alone(files, read, args.workers),
                            model_alone(classifier, files, args.model_batches),
                            predict_folder_rate(classifier, read, folder, scratch, args.workers),
                        )
                    )
            for reading, rates in measured.items():
                medians = np.median(rates, axis=0)
                rows.append((f"{width}x{height}", reading, *medians))
    print(table(args, rows))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--files", type=int, default=320, help="JPEGs per photo size (320)")
    parser.add_argument(
        "--photos", type=photo_size, nargs="+", default=[(1600, 1200), (640, 480)], metavar="WxH"
    )
    parser.add_argument("--model-batches", type=int, default=10, help="batches timed for M")
    parser.add_argument("--repeats", type=int, default=3, help="turns; medians are shown (3)")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (CPU count)")
    return parser.parse_args(argv)


def photo_size(text):
    try:
        width, height = (int(side) for side in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected WIDTHxHEIGHT, e.g. 1600x1200"
        ) from None
    return width, height


def write_photos(folder, count, width, height):
    """`count` different JPEGs (quality 90) of width x height from the shipped sample photo."""
    from keras_nets.images.files import SAMPLE_PHOTO

    os.makedirs(folder)
    rng = np.random.default_rng(0)
    sample = Image.open(SAMPLE_PHOTO).convert("RGB")
    for i in range(count):
        left, top = rng.uniform(0, 0.1, 2) * sample.size
        box = (left, top, left + 0.9 * sample.width, top + 0.9 * sample.height)
        photo = sample.resize((width, height), Image.Resampling.BICUBIC, box=box)
        pixels = np.asarray(photo, "float32") + rng.normal(0, 4, (height, width, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).save(
            os.path.join(folder, f"{i:06d}.jpg"), quality=90
        )
    return folder


def classifier_for(args):
    from keras_nets import registry
    from keras_nets.prediction import Classifier, imagenet_decoder
    from keras_nets.preprocessing import eval_transform

    config = registry.get_config(args.model)
    model = config.build(weights=None)
    return Classifier(model, eval_transform(config), imagenet_decoder, fast=True)


def readers(transform):
    """{"full": reads a JPEG at full size, "draft": at the smallest scale it needs}."""
    from keras_nets.images.files import read_image

    return {"full": lambda source: transform(read_image(source)), "draft": transform.read}


def decoding_alone(files, read, workers):
    """D: images/s through `decoded_batches`' thread pool, nothing else running."""
    from keras_nets.prediction.folders import decoded_batches

    started = time.perf_counter()
    count = sum(len(batch) for batch in decoded_batches(files, read, BATCH, workers))
    return count / (time.perf_counter() - started)


def model_alone(classifier, files, batches):
    """M: images/s of `classifier.predict` on batches of BATCH decoded images (after one)."""
    images = [classifier.transform.read(path) for path in files[:BATCH]]
    images = (images * BATCH)[:BATCH]
    classifier.predict(images, 5)  # the first call sets the session up
    started = time.perf_counter()
    for _ in range(batches):
        classifier.predict(images, 5)
    return batches * BATCH / (time.perf_counter() - started)


def predict_folder_rate(classifier, read, folder, scratch, workers):
    """End to end: images/s of `predict_folder` over `folder`, reading with `read`."""
    from keras_nets.prediction.folders import predict_folder

    output = os.path.join(scratch, "results.jsonl")
    classifier.read = read  # the instance's reading, for this run
    started = time.perf_counter()
    counts = predict_folder([folder], output, classifier=classifier, batch=BATCH, workers=workers)
    elapsed = time.perf_counter() - started
    os.unlink(output)
    del classifier.read
    return counts["predicted"] / elapsed


def versions():
    import keras
    import onnxruntime
    import PIL

    return (
        f"Python {platform.python_version()}, Keras {keras.__version__} "
        f"({keras.backend.backend()}), onnxruntime {onnxruntime.__version__}, Pillow {PIL.__version__}"
    )


def table(args, rows):
    lines = [
        f"{args.model} 224 px (random weights), fast path (ONNX Runtime), batch {BATCH}, "
        f"{args.files} JPEGs per size, medians of {args.repeats} turns, {args.workers or os.cpu_count()} decoding threads, "
        f"{os.cpu_count()} CPU(s): {cpu_description()}; {platform.system()} "
        f"{platform.machine()}, {versions()}",
        "",
    ]
    header = ["photos", "JPEG read", "decode D img/s", "model M img/s", "bound 1/(1/D+1/M)"]
    header += ["end to end img/s", "end to end / bound"]
    cells = []
    for size, reading, decode_rate, model_rate, end_to_end in rows:
        bound = 1 / (1 / decode_rate + 1 / model_rate)
        figures = (decode_rate, model_rate, bound, end_to_end)
        cells.append([size, reading, *(f"{x:.1f}" for x in figures), f"{end_to_end / bound:.0%}"])
    return "\n".join(lines) + "\n" + markdown_table(header, cells, numeric_from=2)


if __name__ == "__main__":
    main()
