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
import hashlib
import json
import os
import pathlib
import stat

import numpy

from keras_nets import safe_files
from keras_nets.image_files import IMAGE_EXTENSIONS, ImageError, is_url, walk_images

PREFETCH_BATCHES = 2  # batches decoded ahead of the model: bounds memory, keeps the model fed
# Tests only: "POINT:MARKER" pauses at POINT ("results-line-N": after writing the N-th line of
# this run) after creating MARKER, so a test can kill the run there (safe_files.pause_for_tests).


class ResultsFileError(ValueError):
    """OUTPUT cannot take the results (it exists without resume/overwrite, or is not ours)."""


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


def check_output(path, resume=False, overwrite=False, inputs=()):
    """A ResultsFileError unless OUTPUT can take results: new, or existing with resume/overwrite.

    Refused whatever the flags, so that no file of the user's is ever written through or cut: a
    symbolic link (its target would be written), anything but a regular file, a name with an image
    extension (a photo of the folder being predicted), and one of `inputs` itself.
    """
    path = os.fspath(path)
    if path.lower().endswith(IMAGE_EXTENSIONS):
        raise ResultsFileError(
            f"output={path}: the name of an image; results are JSON lines (e.g. results.jsonl)"
        )
    problem = safe_files.overwrite_problem(path, overwrite=resume or overwrite)
    if problem == "a symbolic link":
        raise ResultsFileError(f"output={path}: a symbolic link; not written through")
    if problem not in (None, safe_files.EXISTS):
        raise ResultsFileError(f"output={path}: not a regular file ({problem})")
    exists = os.path.lexists(path)
    if exists and any(same_file(path, item) for item in inputs if not is_url(item)):
        raise ResultsFileError(f"output={path}: one of the images to predict")
    if resume and overwrite:
        raise ResultsFileError(f"output={path}: resume or overwrite it, not both")
    if problem == safe_files.EXISTS:
        raise ResultsFileError(
            f"output={path} exists: resume it (--resume), or replace it (--overwrite)"
        )
    if exists and resume and os.path.getsize(path) > 0:
        with open(path, "rb") as f:  # at most 64 KiB: a file without newlines is not read whole
            header_of(f.readline(2**16), path)
    return exists


def header_of(line, path):
    """The model identity a results file's first line records; a ResultsFileError if it is not
    the first line of one (an older file, or someone else's)."""
    try:
        identity = json.loads(line)[HEADER_KEY]
        if isinstance(identity, dict):
            return identity
    except (ValueError, KeyError, TypeError):
        pass
    raise ResultsFileError(
        f"output={path}: line 1 is not the first line of a keras-nets predict results file (the "
        "model that wrote it); not resumed"
    )


def same_file(path, other):
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False


def image_name(source):
    """How a source is named in the results file: a URL as given, a path absolute with symbolic
    links resolved, so that `photos/` and its absolute path name each image once."""
    if is_url(source):
        return str(source)
    return os.path.realpath(source)


def model_identity(predictor, weights, top):
    """What the results file's first line records about the model that writes it.

    The weights are identified by the sha256 of their values as loaded (whatever file they came
    from), the labels by the sha256 of the class names (or "imagenet"); a resume is refused
    unless every field but "weights" (where they were read from) is the same.
    """
    digest = hashlib.sha256()
    for array in predictor.model.get_weights():
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(numpy.ascontiguousarray(array).tobytes())
    names = predictor.class_names
    labels = "imagenet" if names is None else hashlib.sha256(json.dumps(list(names)).encode())
    return {
        "model": predictor.model.name,
        # where they came from, for people: a file's path, or "imagenet", "none", None as given
        "weights": os.path.realpath(weights) if is_path(weights) else weights,
        "weights_sha256": digest.hexdigest(),
        "labels": labels if isinstance(labels, str) else "sha256:" + labels.hexdigest(),
        "size": list(predictor.size),
        "pipeline": predictor.transform.describe(),
        "runtime": getattr(predictor, "runtime", "keras"),
        "top": top,
    }


def is_path(weights):
    return isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)


HEADER_KEY = "keras_nets_predict"  # the first line of a results file: {HEADER_KEY: identity}
COMPARED = ("model", "weights_sha256", "labels", "size", "pipeline", "runtime", "top")


class ResultsFile:
    """OUTPUT opened for appending JSON lines, one `os.write` per complete line.

    The first line records the model (`model_identity`); the file stays locked (`flock`) while
    open, so a second run on it is refused instead of predicting every image again into it.
    """

    def __init__(self, path, resume=False, overwrite=False, identity=None, inputs=()):
        self.path = pathlib.Path(path)
        self.done = set()
        identity = identity or {}
        exists = check_output(self.path, resume, overwrite, inputs)
        flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            self.fd = os.open(self.path, flags if exists else flags | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # created since check_output: by another run
            raise ResultsFileError(
                f"output={self.path} exists: resume it (--resume), or replace it (--overwrite)"
            ) from None
        self.created = not exists
        try:
            if not stat.S_ISREG(os.fstat(self.fd).st_mode):
                raise ResultsFileError(f"output={self.path}: not a regular file")
            if not safe_files.lock_open_file(self.fd):
                raise ResultsFileError(
                    f"output={self.path}: another keras-nets predict is writing it; wait for it "
                    "to end"
                )
            if exists and resume and os.fstat(self.fd).st_size > 0:
                self.done = self.read_done(identity)
                return
            os.ftruncate(self.fd, 0)  # new, empty, or replaced with --overwrite (and locked)
            self.write({HEADER_KEY: identity})
        except BaseException:
            os.close(self.fd)
            raise

    def read_done(self, identity):
        """The images already in OUTPUT, after checking its first line names the same model; a
        cut-short last line is removed from the file."""
        done, complete_bytes = set(), 0
        with open(os.dup(self.fd), "rb") as f:
            for number, line in enumerate(f, 1):
                if not line.endswith(b"\n") and number > 1:  # the last line, cut short: dropped
                    break
                if number == 1:
                    self.check_header(header_of(line, self.path), identity)
                    complete_bytes += len(line)
                    continue
                try:
                    done.add(json.loads(line)["image"])
                except (ValueError, KeyError, TypeError):
                    raise ResultsFileError(
                        f"output={self.path}: line {number} is not a result of keras-nets "
                        "predict; not resumed"
                    ) from None
                complete_bytes += len(line)
        if complete_bytes < os.fstat(self.fd).st_size:
            os.ftruncate(self.fd, complete_bytes)
        return done

    def check_header(self, recorded, identity):
        differ = [key for key in COMPARED if recorded.get(key) != identity.get(key)]
        if differ:
            shown = "; ".join(
                f"{key} {short(recorded.get(key))} there, {short(identity.get(key))} now"
                for key in differ
            )
            raise ResultsFileError(
                f"output={self.path} was written by another model or settings ({shown}); resume "
                "it with the same ones, or write to another file"
            )

    def write(self, record):
        os.write(self.fd, (json.dumps(record) + "\n").encode("utf-8"))

    def close(self):
        os.close(self.fd)  # releases the lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def short(value):
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
    from keras_nets.prediction import Classifier

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
