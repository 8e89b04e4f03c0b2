"""Fetching a published weights file into the cache: from the cache, a mirror or the manifest's
URLs, checked before it gets its name.

Where `fetch` finds a weights file, in order:
  1. the cache, `$KERAS_HOME/models/<file>` (default `~/.keras/models`, where keras.applications
     keeps the same files): a valid file there is used without touching the network;
  2. the mirror `$KERAS_NETS_WEIGHTS_URL/<file>`, when that variable is set;
  3. each URL of the manifest, in turn.

A file is valid when its md5 (or sha256, as Keras 3 publishes for its own files) is the published
one or, where none is published, when it is a complete HDF5 weights file (its layer count is
checked against the model when it is loaded). A file with no published hash is never fetched over
plain http (anyone on the way could swap it): only https, `file:` URLs and local folders, and an
https URL may redirect only to https, unless `KERAS_NETS_ALLOW_HTTP=1` says a plain-http mirror is
trusted.

Downloads stream into a private directory next to the cache, md5 and sha256 computed on the way:
a connection or read that gives no data for DOWNLOAD_TIMEOUT seconds is given up; a file announced
or sent larger than its bound (`max_bytes`) is stopped and discarded before it can fill the disk;
a `file:` URL or local mirror is read only when it is a regular file (a FIFO would block forever,
a device never ends). A file reaches its cache name only once it is valid, by an atomic rename or
hard link: an interrupted, truncated or concurrent download never leaves a partial file under the
final name, and two processes fetching one file at once both end up with the same valid file (the
first to finish puts it in place, by a hard link that never replaces an existing file, and records
its sha256; the other uses that file).
"""

import contextlib
import glob
import hashlib
import http.client
import os
import pathlib
import shutil
import socket
import stat as stat_module
import sys
import tempfile
import urllib.request
import warnings

from keras_nets.core import safe_files
from keras_nets.weights.cache import (
    CachedFileChanged,
    WeightsDownloadError,
    cached_file,
    change_since_cached,
    digests,
    downloaded_here,
    file_problem,
    hash_problem,
    record_sha256,
    sha256_record,
)
from keras_nets.weights.hdf5 import hdf5_problem
from keras_nets.weights.manifest import entry, published_hash, resolve

MIRROR_ENV = "KERAS_NETS_WEIGHTS_URL"
ALLOW_HTTP_ENV = "KERAS_NETS_ALLOW_HTTP"
DOWNLOAD_TIMEOUT = 30  # seconds to connect, or without a byte, before a download is given up
CHUNK = 1 << 20


def candidate_urls(item):
    """The URLs `fetch` tries for a manifest entry: the mirror (if set), then the manifest's."""
    mirror = os.environ.get(MIRROR_ENV)
    if mirror and "://" not in mirror:  # a local directory
        mirror = pathlib.Path(mirror).resolve().as_uri()
    urls = [mirror.rstrip("/") + "/" + item["file"]] if mirror else []
    return urls + list(item["urls"])


def _unchecked(item):
    """Whether a download of `item` has nothing but its source to trust (no md5, no
    KERAS_NETS_ALLOW_HTTP=1): then only https or a local file may serve it, and https may
    redirect only to https."""
    return published_hash(item) is None and os.environ.get(ALLOW_HTTP_ENV) != "1"


def unchecked_source_problem(url, item):
    """Why `url` may not be used for `item`, or None.

    A file without a published md5 can only be trusted as far as its source: https or a local
    file, never plain http (or ftp) that anyone on the way can rewrite, unless the user says the
    mirror is trusted with KERAS_NETS_ALLOW_HTTP=1.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if not _unchecked(item) or scheme in ("https", "file"):
        return None
    return (
        f"refused: {scheme or 'this'} URL is not authenticated and no md5 is published for "
        f"{item['file']} to check the download against; use https or a local mirror, or set "
        f"{ALLOW_HTTP_ENV}=1 if you trust this one"
    )


class _HttpsRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to another https URL: an https link that redirects to plain http
    would hand the file to anyone on the way, which `unchecked_source_problem` refuses up front."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        target = urllib.parse.urljoin(req.full_url, newurl)
        if urllib.parse.urlsplit(target).scheme.lower() != "https":
            raise urllib.error.URLError(
                f"refused: it redirects to {target}, which is not https, and no md5 is published "
                f"to check the download against; set {ALLOW_HTTP_ENV}=1 if you trust it"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(key, include_top=True):
    """The local path of the published weights file for manifest `key`, downloading it if needed.

    Raises WeightsDownloadError naming the file, every URL tried with its failure and the cache
    path where a copy downloaded by hand is picked up; CachedFileChanged (a WeightsDownloadError)
    when the cached file is no longer the one that entered the cache; and a WeightsDownloadError
    when a file that keras-nets did not download sits under the cache name and is not the published
    one (it is left as it is).
    """
    key = resolve(key)
    item = entry(key, include_top)
    target = cached_file(item)
    again = f"`keras-nets weights download {key}{'' if include_top else ' --notop'}`"
    _check_cache_dir(os.path.dirname(target))
    notes = []
    superseded = False  # a download of ours that is no longer valid: replaced by a valid one
    try:
        stat = os.stat(target)
    except FileNotFoundError:
        pass
    else:
        if not stat_module.S_ISREG(stat.st_mode):
            raise WeightsDownloadError(
                f"the weights cache path {target} is not a regular file (a directory, FIFO, ...); "
                "move it away or set KERAS_HOME to another directory"
            )
        digest = digests(target)
        problem = file_problem(target, item, digest)
        if problem is None:
            change = change_since_cached(target, digest)
            if change is None:
                return target
            raise CachedFileChanged(
                f"the cached weights file {target} ({key!r}, include_top={include_top}): {change}. "
                f"If you did not change it on purpose, delete it (and {sha256_record(target)}) and "
                f"run {again} to fetch it again."
            )
        if not downloaded_here(target, digest):
            raise WeightsDownloadError(
                f"the cached weights file {target} ({key!r}, include_top={include_top}) is not the "
                f"published file: {problem}. keras-nets did not download it (copied by hand, or "
                "another library's), so it is left as it is: move it away and run "
                f"{again} to fetch the published one."
            )
        superseded = True
        notes.append(
            f"The cached {target}, downloaded by keras-nets earlier, is no longer the published "
            f"file ({problem}); it was kept, and is replaced once a valid copy is downloaded."
        )
        warnings.warn(notes[-1], stacklevel=2)

    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except OSError as error:
        raise WeightsDownloadError(
            f"cannot create the weights cache {os.path.dirname(target)}: {error.strerror}; set "
            "KERAS_HOME to a writable directory"
        ) from None
    failures = []
    for url in candidate_urls(item):
        refused = unchecked_source_problem(url, item)
        if refused:
            failures.append(f"  {url}\n    {refused}")
            continue
        try:
            return _download(url, item, target, replace=superseded)
        except DownloadFailed as error:
            failures.append(f"  {url}\n    {error}")
    raise WeightsDownloadError(
        f"could not download {item['file']} (the {key!r} weights, include_top={include_top}).\n"
        "Tried:\n"
        + "\n".join(failures or ["  (no URLs in the manifest)"])
        + "\n"
        + "".join(note + "\n" for note in notes)
        + f"Without network access, download the file elsewhere ({again}, or any of the URLs "
        f"above) and copy it to\n  {target}\nwhere it is picked up without network access; or set "
        f"{MIRROR_ENV} to a mirror that serves it."
    )


def _check_cache_dir(directory):
    """A WeightsDownloadError unless `directory` is a directory or can become one."""
    parent = os.path.abspath(directory)
    while not os.path.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise WeightsDownloadError(
            f"the weights cache {directory} cannot be created: {parent} is a file, not a "
            "directory; set KERAS_HOME to a directory"
        )


class DownloadFailed(Exception):
    """One URL did not give a valid file; the message says why, in one line."""


def _download(url, item, target, replace=False):
    """Downloads `url` next to `target`, checks it, puts it at `target` and records its sha256.

    `replace`: `target` is a download of ours that is no longer valid, replaced by this one.
    Raises DownloadFailed (one line) when the URL gives no valid file; nothing is left behind.
    """
    directory = os.path.dirname(target)
    pattern = os.path.join(glob.escape(directory), f".{glob.escape(item['file'])}.*.partial")
    safe_files.remove_stale(glob.glob(pattern))  # left by a killed process
    try:
        staging = tempfile.mkdtemp(prefix=f".{item['file']}.", suffix=".partial", dir=directory)
    except OSError as error:
        raise WeightsDownloadError(
            f"cannot write in the weights cache {directory}: {error.strerror}; set KERAS_HOME to a "
            "writable directory"
        ) from None
    try:
        downloaded = os.path.join(staging, item["file"])
        with _LineEndedOnError():
            digest = _retrieve(url, item, downloaded)
        mismatch = hash_problem(item, digest)
        if mismatch:
            raise DownloadFailed(f"{mismatch}; the download was discarded")
        if published_hash(item) is None:
            problem = hdf5_problem(downloaded)
            if problem:
                raise DownloadFailed(f"the download is {problem}; it was discarded")
        if replace:
            os.replace(downloaded, target)  # ours, superseded: `fetch` checked downloaded_here
        else:
            try:
                os.link(downloaded, target)  # never replaces: the first complete download wins
            except FileExistsError:
                return target  # another process put its copy, checked as ours was, in place first
            except OSError:  # a file system without hard links
                os.replace(downloaded, target)
        record_sha256(target, digest["sha256"], source=url)
    except OSError as error:  # the cache's disk is full, read-only, ...
        raise DownloadFailed(
            f"cannot write {error.filename or directory}: {error.strerror or error}; nothing was "
            "kept"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _retrieve(url, item, destination):
    """Copies what `url` serves to the new file `destination`; its {"md5", "sha256"}.

    Shows Keras' progress bar. Raises DownloadFailed: the URL cannot be opened, gives no data for
    DOWNLOAD_TIMEOUT seconds, announces or sends more than item["max_bytes"], ends before the
    length it announced, or is a local path that is not a regular file (never read).
    """
    import keras  # here, so that `keras-nets weights list|path|verify` start without TensorFlow

    bound = item["max_bytes"]
    too_large = (
        f"more than {bound:,} bytes, the bound for {item['file']} (from the parameter count of its "
        "model); stopped, nothing kept"
    )
    hashes = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    received = 0
    try:
        with _open(url, item) as (source, length):
            if length is not None and length > bound:
                raise DownloadFailed(f"it announces {length:,} bytes: {too_large}")
            print(f"Downloading data from {url}")
            progress = keras.utils.Progbar(length)
            with open(destination, "xb") as out:
                while chunk := source.read1(CHUNK):  # what has arrived, not a full CHUNK
                    received += len(chunk)
                    if received > bound:
                        raise DownloadFailed(f"it sent {too_large}")
                    try:
                        out.write(chunk)
                    except OSError as error:  # a full disk
                        raise DownloadFailed(
                            f"cannot write {destination}: {error.strerror}; nothing kept"
                        ) from None
                    for digest in hashes.values():
                        digest.update(chunk)
                    progress.update(received)
            if length is not None and received < length:
                raise DownloadFailed(
                    f"truncated download, discarded (retrieval incomplete: got only {received} "
                    f"out of {length} bytes)"
                )
    except http.client.IncompleteRead as error:
        raise DownloadFailed(
            f"truncated download, discarded (retrieval incomplete: got only "
            f"{received + len(error.partial)} out of {length} bytes)"
        ) from None
    except urllib.error.HTTPError as error:
        raise DownloadFailed(f"HTTP error {error.code} ({error.reason})") from None
    except TimeoutError:
        raise DownloadFailed(_timed_out(received)) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, (TimeoutError, socket.timeout)):
            raise DownloadFailed(_timed_out(received)) from None
        raise DownloadFailed(str(error.reason)) from None
    except (OSError, ValueError, http.client.HTTPException) as error:  # ValueError: no scheme
        raise DownloadFailed(str(error) or type(error).__name__) from None
    return {name: digest.hexdigest() for name, digest in hashes.items()}


def _timed_out(received):
    return (
        f"no data for {DOWNLOAD_TIMEOUT} s after {received:,} bytes; gave up (timeout), nothing "
        "kept"
    )


@contextlib.contextmanager
def _open(url, item):
    """(a readable binary stream, its announced length or None) for `url`, closed after.

    A `file:` URL is opened without blocking and read only when it is a regular file. http(s)
    connects and reads with DOWNLOAD_TIMEOUT; a file without a published md5 follows redirects to
    https only (`_HttpsRedirectsOnly`).
    """
    if urllib.parse.urlsplit(url).scheme.lower() == "file":
        path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
        # O_NONBLOCK: opening a FIFO without a writer would wait forever; fstat then refuses it
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        info = os.fstat(handle)
        if not stat_module.S_ISREG(info.st_mode):
            os.close(handle)
            raise DownloadFailed(f"{path} is not a regular file (a FIFO, device, ...); not read")
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(handle, True)
        with os.fdopen(handle, "rb") as source:
            yield source, info.st_size
        return
    handlers = [_HttpsRedirectsOnly] if _unchecked(item) else []
    opener = urllib.request.build_opener(*handlers)
    with opener.open(url, timeout=DOWNLOAD_TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        yield response, int(length) if length and length.strip().isdigit() else None


class _LineEndedOnError:
    """Ends the line of a progress bar cut short by an error, so the error starts on its own line.

    Stands in for sys.stdout while a download runs, noting whether the last text written ended its
    line.
    """

    def __init__(self):
        self.line_open = False

    def __enter__(self):
        self.original = sys.stdout
        sys.stdout = self
        return self

    def write(self, text):
        if text:
            self.line_open = not text.endswith("\n")
        return self.original.write(text)

    def __getattr__(self, name):
        return getattr(self.original, name)

    def __exit__(self, kind, error, traceback):
        sys.stdout = self.original
        if error is not None and self.line_open:
            self.original.write("\n")
            self.original.flush()
        return False
