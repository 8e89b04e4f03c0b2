"""Predicting over folders of any size, into a results file that survives interruptions.

    from keras_nets.folder_prediction import predict_folder
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
(SIGKILL included) leaves every finished image's line whole. With `resume=True` the images already
in OUTPUT are skipped; a last line cut short (by a full disk, or a writer other than this one) is
dropped and that image predicted again. Without `resume`, an existing OUTPUT is refused unless
`overwrite=True`: we never overwrite what we did not write.

A line is {"image": path, "predictions": [{"wnid", "label", "score"}, ...]} (as `--json`), or
{"image": path, "error": message} for a file that could not be read (not retried on resume).
"""

import collections
import concurrent.futures
import json
import os
import pathlib

from keras_nets.image_files import ImageError, is_url, walk_images

PREFETCH_BATCHES = 2  # batches decoded ahead of the model: bounds memory, keeps the model fed
# Tests only: "POINT:MARKER" pauses at POINT ("results-line-N": after writing the N-th line of
# this run) after creating MARKER, so a test can kill the run there (see training.pause_for_tests).


class ResultsFileError(ValueError):
    """OUTPUT cannot take the results (it exists without resume/overwrite, or is not ours)."""


def iter_sources(inputs, missing):
    """Yields the images of `inputs` (files and URLs as given, folders scanned lazily); appends
    to the list `missing` each input that does not exist."""
    for item in inputs:
        if is_url(item):
            yield item
        elif os.path.isdir(item):
            yield from walk_images(item)
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
    try:
        return read(source)
    except ImageError as error:
        return error


def decoded_batches(sources, read, batch_size, workers=None):
    """Yields [(source, read(source) or its ImageError), ...] per batch of `sources`, in order.

    `read`: a source's model input, e.g. `Classifier.read` (the model's evaluation pipeline).

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


def check_output(path, resume=False, overwrite=False):
    """A ResultsFileError unless OUTPUT can take results: new, or existing with resume/overwrite."""
    exists = os.path.lexists(path)
    if exists and not os.path.isfile(path):
        raise ResultsFileError(f"output={path}: not a regular file")
    if resume and overwrite:
        raise ResultsFileError(f"output={path}: resume or overwrite it, not both")
    if exists and not (resume or overwrite):
        raise ResultsFileError(
            f"output={path} exists: resume it (--resume), or replace it (--overwrite)"
        )
    return exists


class ResultsFile:
    """OUTPUT opened for appending JSON lines, one `os.write` per complete line."""

    def __init__(self, path, resume=False, overwrite=False):
        self.path = pathlib.Path(path)
        self.done = set()
        exists = check_output(self.path, resume, overwrite)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        if exists and resume:
            self.done = self.read_done()
        elif exists:
            flags |= os.O_TRUNC
        self.fd = os.open(self.path, flags, 0o644)

    def read_done(self):
        """The images already in OUTPUT; a cut-short last line is removed from the file."""
        done, complete_bytes = set(), 0
        with open(self.path, "rb") as f:
            for number, line in enumerate(f, 1):
                if not line.endswith(b"\n"):  # the last line, cut short: dropped
                    break
                try:
                    done.add(json.loads(line)["image"])
                except (ValueError, KeyError, TypeError):
                    raise ResultsFileError(
                        f"output={self.path}: line {number} is not a result of keras-nets "
                        "predict; not resumed"
                    ) from None
                complete_bytes += len(line)
        if complete_bytes < os.path.getsize(self.path):
            os.truncate(self.path, complete_bytes)
        return done

    def write(self, record):
        os.write(self.fd, (json.dumps(record) + "\n").encode("utf-8"))

    def close(self):
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def record_of(source, predictions=None, error=None):
    if error is not None:
        return {"image": str(source), "error": str(error)}
    return {
        "image": str(source),
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
      resume: skip the images already in `output` (a cut-short last line is dropped first).
      overwrite: replace an existing `output` (without `resume`; otherwise a ResultsFileError).
      workers: decoding threads (default: the CPU count).
      progress: called with each record written (e.g. to print it).

    Returns:
      {"predicted": n, "failed": n, "skipped": n (already in output), "missing": [inputs]}.
    """
    from keras_nets.prediction import Classifier
    from keras_nets.training import pause_for_tests

    check_output(output, resume, overwrite)  # before the model loads: bad arguments fail fast
    if classifier is None:
        classifier = Classifier.load(
            model, weights, fast=fast, calibration=calibration, alpha=alpha, size=size
        )
    with ResultsFile(output, resume=resume, overwrite=overwrite) as results:
        missing, counts = [], {"predicted": 0, "failed": 0, "skipped": 0}

        def to_do(sources):
            for source in sources:
                if str(source) in results.done:
                    counts["skipped"] += 1
                else:
                    yield source

        sources = to_do(iter_sources(inputs, missing))
        written = 0
        for decoded in decoded_batches(sources, classifier.read, batch, workers):
            good = [(s, image) for s, image in decoded if not isinstance(image, ImageError)]
            predictions = iter(classifier.predict([image for _, image in good], top) if good else ())
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
                pause_for_tests(f"results-line-{written}")
    return {**counts, "missing": missing}
