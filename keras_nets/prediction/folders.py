"""Predicting over folders of any size, into a results file that survives interruptions.

    from keras_nets.prediction import predict_folder
    predict_folder(["photos/"], "results.jsonl", model="mobilenet_v2", fast=True)
    predict_folder(["photos/"], "results.jsonl", model="mobilenet_v2", resume=True)  # after a crash

What `keras-nets predict ... --output results.jsonl [--resume]` does. Memory stays bounded
whatever the number of files:

- folders are listed lazily (`image_files.walk_images`: `os.scandir`, one directory's names
  at a time, sorted, so the order is the same every run);
- images are decoded and resized by a pool of threads (PIL releases the GIL while it decodes and
  resizes) at most `PREFETCH_BATCHES` batches ahead of the model, which meanwhile predicts;
- each result is appended to OUTPUT as one JSON line, written by a single `os.write` of the whole
  line, as soon as its batch is predicted.

OUTPUT is a log, not a file written once: it grows line by line, and a run killed at any moment
(SIGKILL included) leaves every finished image's line whole. Its first line records the model that
writes it (`model_identity`: weights by the sha256 of their values, labels, input size, pipeline,
runtime, top), and while a run writes it the file is locked. With `resume=True` the images already
in OUTPUT are skipped, after checking that its first line names the same model (another one is
refused: its labels would mix in one file); a last line cut short (by a full disk, or a writer
other than this one) is dropped and that image predicted again. Without `resume`, an existing
OUTPUT is refused unless `overwrite=True`: we never overwrite what we did not write. A symbolic
link, a special file, a name with an image extension and one of the inputs are refused whatever
the flags.

The first line is {"keras_nets_predict": {"model", "weights", "weights_sha256", ...}}; each other
line is {"image": path, "predictions": [{"wnid", "label", "score"}, ...]} (as `--json`), or
{"image": path, "error": message} for a file that could not be read (not retried on resume) or a
folder that could not be listed (listed again on resume). Paths are absolute with symbolic links
resolved, so a resume matches them however the folder is typed.
"""

import collections
import concurrent.futures
import os
import pathlib

from keras_nets.core import safe_files
from keras_nets.images.files import ImageError, is_url, walk_images
from keras_nets.prediction.results_file import ResultsFile, check_output

PREFETCH_BATCHES = 2  # batches decoded ahead of the model: bounds memory, keeps the model fed
# Tests only: "POINT:MARKER" pauses at POINT ("results-line-N": after writing the N-th line of
# this run) after creating MARKER, so a test can kill the run there (safe_files.pause_for_tests).


class UnlistedFolder(str):
    """A folder a walk could not list, in the stream of sources: its path, and why."""

    def __new__(cls, path, message):
        source = super().__new__(cls, os.fspath(path))
        source.message = message
        return source


def iter_sources(inputs, missing):
    """Yields the images of `inputs` (files and URLs as given, folders scanned lazily); appends
    to the list `missing` each input that does not exist. A folder that cannot be listed is
    yielded as an `UnlistedFolder` where the walk met it, and the walk goes on."""
    unlisted = collections.deque()

    def note(folder, message):
        unlisted.append(UnlistedFolder(folder, message))

    for item in inputs:
        if is_url(item):
            yield item
        elif os.path.isdir(item):
            for path in walk_images(item, on_error=note):
                while unlisted:
                    yield unlisted.popleft()
                yield path
            while unlisted:
                yield unlisted.popleft()
        elif os.path.lexists(item):
            yield pathlib.Path(item)
        else:
            missing.append(item)


def batches(items, size):
    """Lists of up to `size` consecutive items of an iterable (read lazily)."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_or_error(source, read):
    if isinstance(source, UnlistedFolder):
        return ImageError(source.message)
    try:
        return read(source)
    except ImageError as error:
        return error


def decoded_batches(sources, read, batch_size, workers=None):
    """Yields [(source, read(source) or its ImageError), ...] per batch of `sources`, in order.

    `read`: a source's model input, e.g. `Classifier.read` (the model's evaluation pipeline).
    An `UnlistedFolder` among the sources comes out as its ImageError, unread.

    Decoding runs on `workers` threads (default: the CPU count), at most PREFETCH_BATCHES
    batches ahead of the consumer: memory is bounded whatever the number of sources.
    """
    workers = workers or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending = collections.deque()
        try:
            for batch in batches(sources, batch_size):
                pending.append([(s, pool.submit(read_or_error, s, read)) for s in batch])
                if len(pending) > PREFETCH_BATCHES:
                    yield [(s, future.result()) for s, future in pending.popleft()]
            while pending:
                yield [(s, future.result()) for s, future in pending.popleft()]
        finally:
            for batch in pending:  # interrupted: drop what was not started
                for _, future in batch:
                    future.cancel()


def image_name(source):
    """How a source is named in the results file: a URL as given, a path absolute with symbolic
    links resolved, so that `photos/` and its absolute path name each image once."""
    if is_url(source):
        return str(source)
    return os.path.realpath(source)


def model_identity(predictor, weights, top):
    """What the results file's first line records about the model that writes it.

    The predictor's `identity` (the sha256 of the weights' values as loaded, whatever file they
    came from, the labels, size, pipeline and runtime), where the weights were read from, and
    `top`; a resume is refused unless every field but "weights" is the same.
    """
    identity = predictor.identity
    return {
        "model": identity["model"],
        # where they came from, for people: a file's path, or "imagenet", "none", None as given
        "weights": os.path.realpath(weights) if is_path(weights) else weights,
        **{name: value for name, value in identity.items() if name != "model"},
        "top": top,
    }


def is_path(weights):
    return isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)


def record_of(source, predictions=None, error=None):
    if error is not None:
        return {"image": image_name(source), "error": str(error)}
    return {
        "image": image_name(source),
        "predictions": [
            {"wnid": wnid, "label": label, "score": float(score)}
            for wnid, label, score in predictions
        ],
    }


def predict_folder(
    inputs,
    output,
    *,
    model=None,
    weights="imagenet",
    fast=False,
    calibration=None,
    classifier=None,
    top=5,
    batch=32,
    resume=False,
    overwrite=False,
    workers=None,
    progress=None,
    alpha=None,
    size=None,
):
    """Predicts every image of `inputs` into the JSON-lines file `output`; returns counts.

    Args:
      inputs: image files, folders (scanned lazily, recursively) or http(s) URLs.
      output: the results file; one line per image, appended as each batch is predicted.
      model, weights, fast, calibration, alpha, size: as `prediction.Classifier.load` takes them
        (ignored if `classifier`).
      classifier: a `prediction.Classifier` to use instead.
      top: classes per image.
      batch: images per model call.
      resume: skip the images already in `output` (a cut-short last line is dropped first); a
        ResultsFileError if its first line records another model or settings.
      overwrite: replace an existing `output` (without `resume`; otherwise a ResultsFileError).
        Either way, a file another run is writing is refused (it is locked).
      workers: decoding threads (default: the CPU count).
      progress: called with each record written (e.g. to print it).

    Returns:
      {"predicted": n, "failed": n, "skipped": n (already in output), "missing": [inputs]}.
    """
    from keras_nets.prediction.classifier import Classifier

    check_output(output, resume, overwrite, inputs)  # before the model loads: fail fast
    predictor = classifier  # `classifier=`, a public keyword: a prediction.Classifier given
    if predictor is None:
        predictor = Classifier.load(
            model, weights, fast=fast, calibration=calibration, alpha=alpha, size=size
        )
    identity = model_identity(predictor, weights, top)
    with ResultsFile(output, resume, overwrite, identity, inputs) as results:
        missing, counts = [], {"predicted": 0, "failed": 0, "skipped": 0}

        def to_do(sources):
            for source in sources:
                if image_name(source) in results.done:
                    counts["skipped"] += 1
                else:
                    yield source

        sources = to_do(iter_sources(inputs, missing))
        written = 0
        try:
            for decoded in decoded_batches(sources, predictor.read, batch, workers):
                good = [(s, image) for s, image in decoded if not isinstance(image, ImageError)]
                predictions = iter(
                    predictor.predict([image for _, image in good], top) if good else ()
                )
                for source, image in decoded:
                    if isinstance(image, ImageError):
                        record = record_of(source, error=image)
                        counts["failed"] += 1
                    else:
                        record = record_of(source, next(predictions))
                        counts["predicted"] += 1
                    results.write(record)
                    written += 1
                    if progress is not None:
                        progress(record)
                    safe_files.pause_for_tests(f"results-line-{written}")
        except BaseException:
            if results.created and written == 0:  # a file of ours holding no result: not left
                os.unlink(results.path)
            raise
    return {**counts, "missing": missing}
