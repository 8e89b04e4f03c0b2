"""The weights cache: where a published file is kept, whether it is valid, and the sha256
recorded when it entered the cache.

When a file first enters the cache (downloaded, or first used after being copied there by hand), its
sha256 is recorded beside it in `.<file>.sha256` (`sha256sum -c` format; a download's record also
says, in a comment line, that keras-nets downloaded it and from where); every later use and
`keras-nets weights verify` compare the file with it, so a file changed in the cache is an error
naming it, never silently loaded.

A cached file that is not (or no longer) the published one is never deleted unless keras-nets can
prove it wrote it: its record says keras-nets downloaded it and its sha256 is still the recorded one.
Such a file (say, the manifest's md5 changed with a new keras-nets) stays in place until a valid
copy has been downloaded, which then replaces it; offline, it stays and the error says so. Any
other file there (copied by hand, keras.applications' own, changed since) is reported in one line
and left as it is: the user moves it away.
"""

import hashlib
import os
import re
import tempfile

from keras_nets.core.safe_files import is_regular_file
from keras_nets.weights.manifest import entry, published_hash

CHANGED = "it changed since it entered the cache"
DOWNLOADED_BY_US = "# downloaded by keras-nets from "  # the comment line of a download's record


class WeightsDownloadError(RuntimeError):
    """No valid copy of a published weights file was in the cache or could be downloaded."""


class CachedFileChanged(WeightsDownloadError):
    """A cached weights file no longer has the sha256 recorded when it entered the cache."""


def keras_home():
    """`$KERAS_HOME`, else `~/.keras` (`/tmp/.keras` if home is not writable), as Keras has it;
    read at each call, unlike Keras, so a test or a command can move it."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return os.path.expanduser(home)


def cache_dir():
    """`$KERAS_HOME/models`, Keras' own weights cache."""
    return os.path.join(keras_home(), "models")


def cache_path(key, include_top=True):
    """Where the weights file of `key` is cached, or is to be copied by hand."""
    return cached_file(entry(key, include_top))


def cached_file(item):
    """The cache path of a manifest entry's file.

    Its name is the published file name, unless the entry gives a `cache_file`: the name
    keras.applications caches a *different* file under (ResNet50 v0.2 versus Keras 3's ResNet50).
    """
    return os.path.join(cache_dir(), item.get("cache_file", item["file"]))


def file_problem(path, item, digest=None):
    """Why `path` is not a valid copy of the file of manifest entry `item`, or None: its
    published md5 or sha256 (`published_hash`), else where none is published its HDF5 structure.

    `digest`: the file's `digests(path)`, when the caller has them already.
    """
    if not is_regular_file(path):
        return "not a regular file"
    if published_hash(item) is not None:
        return hash_problem(item, digest or digests(path))
    from keras_nets.weights.hdf5 import hdf5_problem  # h5py: not for callers wanting keras_home

    return hdf5_problem(path)


def hash_problem(item, digest):
    """How the file whose `digests` are `digest` differs from the md5 or sha256 manifest entry
    `item` publishes, or None (also where it publishes none)."""
    published = published_hash(item)
    if published is None:
        return None
    algorithm, expected = published
    actual = digest[algorithm]
    return (
        None if actual == expected else f"{algorithm} mismatch: expected {expected}, got {actual}"
    )


def cached_problem(path, item):
    """Why the cached `path`, the file of manifest entry `item`, fails its checks, or None.

    Checks the published md5 or sha256 (or, where none is published, the HDF5 structure), then the
    sha256 recorded when the file entered the cache (recording it if none is:
    `change_since_cached`).
    """
    if not is_regular_file(path):
        return "not a regular file"
    digest = digests(path)
    return file_problem(path, item, digest) or change_since_cached(path, digest)


def digests(path):
    """{"md5": hex, "sha256": hex} of the file at `path`, read once."""
    hashes = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            for digest in hashes.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in hashes.items()}


def md5_of(path):
    return digests(path)["md5"]


def sha256_record(path):
    """Where the sha256 of the cached `path` is recorded: `.<file>.sha256` beside it."""
    directory, name = os.path.split(os.fspath(path))
    return os.path.join(directory, f".{name}.sha256")


def recorded_sha256(path):
    """The sha256 recorded for the cached `path`, or None if none is (or it is unreadable)."""
    return _read_record(path)[0]


def _read_record(path):
    """(the sha256 recorded for the cached `path` or None, whether the record says keras-nets
    downloaded the file)."""
    record = sha256_record(path)
    if not is_regular_file(record):
        return None, False
    try:
        with open(record) as f:
            lines = f.read(16384).splitlines()
    except (OSError, UnicodeDecodeError):
        return None, False
    downloaded = any(line.startswith(DOWNLOADED_BY_US) for line in lines)
    values = [line.split(maxsplit=1) for line in lines if line.strip() and not line.startswith("#")]
    sha256 = values[0][0] if values and re.fullmatch(r"[0-9a-f]{64}", values[0][0]) else None
    return sha256, downloaded


def downloaded_here(path, digest=None):
    """Whether keras-nets provably wrote the cached `path`: its record says keras-nets downloaded
    it, and the file still has the sha256 recorded then. Only such a file is ever replaced or
    removed; `digest`: the file's `digests(path)`, when the caller has them already."""
    sha256, downloaded = _read_record(path)
    if not downloaded or sha256 is None or not is_regular_file(path):
        return False
    return (digest or digests(path))["sha256"] == sha256


def record_sha256(path, sha256, source=None):
    """Records `sha256` for the cached `path`, atomically (a temporary file renamed into place);
    `source`: the URL keras-nets downloaded the file from, which the record then names."""
    directory, name = os.path.split(os.fspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=directory)
    try:
        with os.fdopen(handle, "w") as f:
            if source is not None:  # a comment line, which `sha256sum -c` skips
                f.write(DOWNLOADED_BY_US + re.sub(r"[\r\n]", "", source) + "\n")
            f.write(f"{sha256}  {name}\n")  # the format of `sha256sum`, so `sha256sum -c` checks it
        os.replace(temporary, sha256_record(path))
    except BaseException:
        _remove_quietly(temporary)
        raise


def change_since_cached(path, digest):
    """How the cached `path` differs from the sha256 recorded when it entered the cache, or None.

    Records the sha256 when none is recorded yet (a file copied into the cache by hand).
    """
    recorded = recorded_sha256(path)
    if recorded is None:
        if os.path.lexists(sha256_record(path)):
            return None  # something not a record of ours under the record's name: leave it alone
        try:
            record_sha256(path, digest["sha256"])
        except OSError:  # a read-only cache: the file is still usable, only not recorded
            pass
        return None
    if recorded == digest["sha256"]:
        return None
    return (
        f"{CHANGED} (sha256 recorded in {sha256_record(path)}: {recorded}, now {digest['sha256']})"
    )


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
