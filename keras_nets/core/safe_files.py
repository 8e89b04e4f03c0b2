"""Writing files safely: whole or not at all, one writer per folder, SIGTERM handled like Ctrl-C.

    with atomic_path("run/model.keras") as partial:   # write to `partial`; renamed when complete
        model.save(partial)
    with atomic_directory("out.parquet") as partial:  # the same for a directory written whole
        frame.write.parquet(str(partial))
    with locked("run/", "output"):                     # a second writer is refused in one line
        ...
    remove_stale_partials("run/", ["model.keras"])     # what a killed writer left behind
    overwrite_problem("eval.json", overwrite=False)    # None, EXISTS, or what is there instead
    not_a_regular_file("photo.jpg")                    # None, or why it is never opened

The one place for these policies (CONTRIBUTING.md: a policy lives in one module and everything
calls it). `atomic_path` hides the temporary name (".NAME.partial-PID.SUFFIX") and removes it on
any exception, KeyboardInterrupt and `Terminated` (SIGTERM, see `terminate_as_interrupt`)
included; only SIGKILL or a power cut leaves one, which `remove_stale_partials` then removes, by
its name, under the folder's lock (`remove_stale`, by age, where there is no lock to hold).
`overwrite_problem` is the one rule for replacing what is at a path, and `not_a_regular_file` /
`is_regular_file` the one check before opening one. `locked` uses `fcntl.flock`, which the system
releases when the process ends however it ends, so a killed run never leaves a folder locked.
"""

import contextlib
import json
import os
import pathlib
import re
import shutil
import signal
import stat
import threading
import time

LOCK_FILE = ".keras-nets.lock"
PARTIAL = ".partial-"  # in every temporary name: ".{stem}.partial-{pid}{suffix}"
# A temporary file or directory older than this, where no lock says who writes it, belongs to a
# process killed outright (SIGKILL runs no cleanup): a download or a conversion takes minutes.
STALE_SECONDS = 24 * 3600
EXISTS = "exists"  # what `overwrite_problem` says of a file it may replace with `overwrite`
# Tests only: "POINT:MARKER" pauses a writer at POINT after creating the file MARKER, so that a
# test can interrupt it there deterministically (tests/training/test_train_misuse.py, test_predict_resume).
PAUSE_FOR_TESTS = "KERAS_NETS_TEST_PAUSE"


class LockedError(ValueError):
    """Another process is writing to the folder (it holds the folder's lock)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, docker stop, systemd), raised where the process is, like Ctrl-C's
    KeyboardInterrupt, so that every cleanup that runs on Ctrl-C runs on it too."""


def partial_path(path):
    """The temporary name `atomic_path` writes `path` under, in the same folder."""
    path = pathlib.Path(path)
    return path.with_name(f".{path.stem}{PARTIAL}{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path` to write to; renamed to `path` only if the block completes.

    The temporary name is hidden and keeps the suffix (Keras wants ".keras"); on any exception,
    KeyboardInterrupt and Terminated included, it is removed and `path` is left as it was.
    """
    path = pathlib.Path(path)
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """`atomic_path` for a directory another program writes whole (Spark's or Dask's output): a
    temporary path beside `path`, not created, renamed to `path` only if the block completes,
    and removed with what it holds otherwise. With `overwrite`, a directory already at `path` is
    moved aside to a temporary name, the new one renamed in, then the old one removed; nothing
    at `path` is replaced without it (a FileExistsError). Check `overwrite_problem` and hold a
    lock (`locked`) first: this only makes the last step atomic."""
    path = pathlib.Path(path)
    partial = partial_path(path)
    replaced = partial.with_name(f"{partial.stem}-replaced{partial.suffix}")
    try:
        yield partial
        if os.path.lexists(path):
            if not (overwrite and os.path.isdir(path) and not os.path.islink(path)):
                raise FileExistsError(f"{path}: exists; not replaced")
            os.rename(path, replaced)
        os.rename(partial, path)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(replaced, ignore_errors=True)


def write_json(path, value):
    """`value` as indented JSON to `path`, through `atomic_path`."""
    with atomic_path(path) as partial, open(partial, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def remove_stale_partials(folder, names):
    """Removes the temporary files `atomic_path` made for `names` in `folder` (any process id):
    what a writer killed outright (SIGKILL) left. Call it holding the folder's lock (`locked`),
    so that no live writer's file is taken. Returns the names removed; other files stay."""
    patterns = []
    for name in names:
        stem, suffix = os.path.splitext(name)
        patterns.append(re.compile(rf"\.{re.escape(stem)}{PARTIAL}\d+{re.escape(suffix)}"))
    partials = [
        entry.path
        for entry in os.scandir(folder)
        if any(p.fullmatch(entry.name) for p in patterns) and entry.is_file(follow_symlinks=False)
    ]
    return sorted(os.path.basename(path) for path in remove_stale(partials, max_age=0))


def remove_stale(paths, max_age=STALE_SECONDS):
    """Removes those of `paths` that a killed process left: this user's directories (with what
    they hold) and regular files, last modified more than `max_age` seconds ago.

    For temporary names no lock protects (downloads in the weights cache, conversions in the
    temporary directory): one younger than STALE_SECONDS may belong to a process still running.
    `max_age=0` removes them whatever their age: for a caller holding the lock that proves no
    writer of them is alive (`remove_stale_partials`). A symbolic link, a special file and another
    user's entry are left alone (never ours to judge). Returns the paths removed.
    """
    cutoff = time.time() - max_age
    removed = []
    for path in paths:
        try:
            info = os.lstat(path)
        except OSError:
            continue
        mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()  # no uid on Windows
        stale = max_age <= 0 or info.st_mtime < cutoff
        if not (mine and stale):
            continue
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif stat.S_ISREG(info.st_mode):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
                removed.append(path)
    return removed


def kind_of(mode):
    """What a file of this `st_mode` is, as "a directory", "a FIFO", ... ("a regular file")."""
    kinds = [
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ]
    return next((name for test, name in kinds if test(mode)), "a special file")


def is_regular_file(path, follow_symlinks=True):
    """Whether `path` is a regular file, by `os.stat` alone (`os.lstat` without
    `follow_symlinks`, so a link is then not one): never open anything else, a FIFO blocks
    forever. False when nothing is there or it cannot be seen."""
    try:
        info = os.stat(path) if follow_symlinks else os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode)


def not_a_regular_file(path):
    """None for a regular file (symbolic links followed), else why it is not one, to follow
    "PATH: ": "cannot be read (No such file or directory)", "not a regular file (a FIFO); not
    opened". Only `os.stat`: a FIFO, socket or device is never opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if stat.S_ISREG(mode):
        return None
    return f"not a regular file ({kind_of(mode)}); not opened"


def overwrite_problem(path, overwrite=False, directory=False):
    """Why a run may not write `path`, or None: the one rule for replacing what is there.

    None when nothing is at `path` (not even a dangling symbolic link), or when what is there is
    of the kind the run writes (a regular file; a directory with `directory`) and `overwrite` is
    True. Otherwise the reason, a phrase without the path: EXISTS when it is of that kind and
    `overwrite` is False; else, whatever `overwrite` says, what is there instead (`kind_of`: "a
    symbolic link", "a directory", "a FIFO", ...): writing would go through a link or replace the
    user's link, and a thing of another kind is not what an earlier run wrote. Only `os.lstat`.
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError:  # nothing there (or a name the system refuses: writing it fails the same way)
        return None
    wanted = stat.S_ISDIR(mode) if directory else stat.S_ISREG(mode)
    if not wanted:
        return kind_of(mode)
    return None if overwrite else EXISTS


@contextlib.contextmanager
def locked(folder, what="folder", name=LOCK_FILE):
    """Holds `folder`'s lock (the file `name` in it, LOCK_FILE by default, `fcntl.flock`) for the
    block.

    A second holder, in this process or another, gets a LockedError at once, one line naming
    the folder as `what`=folder (e.g. "output=run: ..."). The lock file is removed on exit. A
    `name` of its own locks one output of a folder that holds others (".OUTPUT.lock", say).
    """
    path = os.path.join(folder, name)
    busy = (
        f"{what}={folder}: another keras-nets run is writing to it (it holds {name}); wait "
        "for it to finish, or choose another folder"
    )
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not lock_open_file(fd):
            os.close(fd)
            raise LockedError(busy)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file between our open and our lock: again
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def terminate_as_interrupt(resend=False):
    """Within the block, SIGTERM raises `Terminated` (a KeyboardInterrupt) in the main thread, so
    temporary files are removed (and child processes ended) as on Ctrl-C. The earlier handler is
    restored afterwards.

    `resend`, for library calls inside someone else's program: only where SIGTERM has its default
    handling (a program's own handler stays in charge), and once the block's cleanup has run the
    signal is delivered again, so the process ends as SIGTERM asked (exit status -15, 143 in a
    shell). Without it (the CLI), the caller catches `Terminated` and exits itself.
    """

    def raise_terminated(signum, frame):
        raise Terminated()

    in_main_thread = threading.current_thread() is threading.main_thread()
    if not in_main_thread or (resend and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield  # only the main thread handles signals
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    except Terminated:
        if resend:
            signal.signal(signal.SIGTERM, previous)
            signal.raise_signal(signal.SIGTERM)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def lock_open_file(fd):
    """Locks the open file `fd` for this process alone (`fcntl.flock`, released when it is closed
    or the process ends, however it ends): False if another holds it. True where there is no
    flock (Windows)."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def pause_for_tests(point):
    """Pauses here if the test-only PAUSE_FOR_TESTS variable names this point (else nothing)."""
    wanted, _, marker = os.environ.get(PAUSE_FOR_TESTS, "").partition(":")
    if wanted == point:
        pathlib.Path(marker).touch()
        # Until the test's signal comes, however late (the test kills a run it leaves paused):
        # a run that woke up first would train on to the end and prove nothing.
        time.sleep(900)
