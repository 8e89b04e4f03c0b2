"""The results file of `predict_folder`: a log of JSON lines that survives interruptions.

Its first line records the model that writes it (`folders.model_identity`); `check_output`
refuses an OUTPUT that is not ours to write, and `ResultsFile` holds it locked while a run
appends one whole line per image (see `keras_nets.prediction.folders` for the format).
"""

import json
import os
import pathlib
import stat

from keras_nets.core import safe_files
from keras_nets.images.files import IMAGE_EXTENSIONS, is_url


class ResultsFileError(ValueError):
    """OUTPUT cannot take the results (it exists without resume/overwrite, or is not ours)."""


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
        flags = (
            os.O_RDWR | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
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
