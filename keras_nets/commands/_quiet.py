"""A quiet start: the TensorFlow / absl / oneDNN / CUDA start-up lines kept off a command's stderr.

TensorFlow's C++ side writes them straight to file descriptor 2 (absl's "All log messages before
absl::InitializeLog() ..." comes before TF_CPP_MIN_LOG_LEVEL is even read), so no Python setting
removes them all. While a command runs, `native_stderr_filtered` points descriptor 2 at a pipe
read by a small forked process that copies every line to the real stderr except those known as
start-up noise (`is_noise`); Python's own `sys.stderr` (our messages, warnings, progress bars)
writes to the real stderr directly, unchanged and unbuffered as before. The filter is a process,
not a thread, so that a crash of the command (a C++ abort, say) still gets its last lines out.

`keras-nets --verbose ...` or KERAS_NETS_VERBOSE=1 turns it off.
"""

import contextlib
import io
import os
import re
import signal
import sys
import threading
import time

VERBOSE_ENV = "KERAS_NETS_VERBOSE"

# Lines that the native libraries write at start-up, and what each is.
NOISE = [
    # absl, before its logging is initialised
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    # absl / glog lines, "I0000 00:00:1796331639.757478    5518 port.cc:153] ...": oneDNN,
    # cudart stubs, cuDNN/cuFFT/cuBLAS factory registration, "E0000 ... CUDA error", cpu features
    re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.-]+:\d+\] "),
    # TensorFlow's older C++ log format, "2026-12-03 21:00:00.000000: I tensorflow/...cc:42] ..."
    re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] \S+:\d+\] "),
    # the second line of TensorFlow's CPU-feature message
    re.compile(r"^To enable the following instructions: .* rebuild TensorFlow"),
]


def is_noise(line):
    """Whether a line of native stderr output is a known start-up message."""
    return any(pattern.match(line) for pattern in NOISE)


def verbose_from_environment():
    return os.environ.get(VERBOSE_ENV, "").lower() not in ("", "0", "false", "no")


def quiet_environment():
    """Environment settings that make TensorFlow and JAX say less (the user's own settings win).

    TF_CPP_MIN_LOG_LEVEL=3 keeps TensorFlow's C++ info, warning and error lines back (its errors
    reach Python as exceptions); the Python-side loggers of TensorFlow and JAX say only errors.
    """
    import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "jax._src.xla_bridge", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def native_stderr_filtered():
    """Within it, what native code writes to descriptor 2 goes through `is_noise`'s filter.

    Does nothing where the filter cannot run safely: no os.fork, threads running already (the
    start-up lines are out by then anyway), or a sys.stderr that is not descriptor 2 (a test's
    capture, say).
    """
    try:
        sys.stderr.flush()
        if sys.stderr.fileno() != 2:  # sys.stderr goes elsewhere (a test's capture, say)
            raise ValueError
        original = os.dup(2)
    except (OSError, AttributeError, ValueError):
        yield
        return
    if not hasattr(os, "fork") or threading.active_count() > 1:  # fork only where it is safe
        os.close(original)
        yield
        return
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the filter: copies the pipe to the real stderr, line by line, until EOF
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to report
        os.close(write_end)
        _copy_filtered(read_end, original)
        os._exit(0)
    os.close(read_end)
    previous_stderr = sys.stderr
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = io.TextIOWrapper(
        os.fdopen(os.dup(original), "wb", buffering=0),
        encoding=previous_stderr.encoding or "utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = previous_stderr
        os.dup2(original, 2)  # closes the pipe's last write end here: the filter sees EOF
        os.close(original)
        _wait_for_filter(child)


# Seconds the command waits for the filter to copy its last lines. A child process the command
# started and that outlives it holds the pipe open (Spark's JVM until this interpreter exits):
# the filter then ends with that child, on its own.
FILTER_EXIT_SECONDS = 2.0


def _wait_for_filter(child):
    deadline = time.monotonic() + FILTER_EXIT_SECONDS
    while True:
        try:
            if os.waitpid(child, os.WNOHANG)[0] or time.monotonic() > deadline:
                return
        except ChildProcessError:
            return
        time.sleep(0.005)


def _copy_filtered(read_end, target):
    pending = b""
    while True:
        try:
            chunk = os.read(read_end, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        _write(target, b"".join(line + b"\n" for line in lines if not _noise(line)))
    if pending and not _noise(pending):
        _write(target, pending)


def _noise(line):
    return is_noise(line.decode("utf-8", "replace"))


def _write(fd, data):
    while data:
        try:
            data = data[os.write(fd, data) :]
        except OSError:
            return
