"""Published weights: where a file comes from, every way a download goes wrong, what stays cached.

Every test runs offline against a real HTTP server on 127.0.0.1 (tests/weights_server.py) serving
weights files written from a tiny Keras model, listed in a test manifest given by
KERAS_NETS_MANIFEST.
"""

import errno
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
import warnings

import h5py
import keras
import numpy as np
import pytest
from published_layout import randomize_weights, write_legacy_h5
from weights_server import (
    NOTOP_FILE,
    TOP_FILE,
    WeightsServer,
    cache_contents,
    md5,
    tiny_model,
    with_records,
)

from keras_nets import pretrained

# Where a file comes from ---------------------------------------------------------------------


def test_first_download_lands_in_the_keras_cache_and_loads(published, keras_home):
    path = pretrained.fetch("tiny", include_top=True)

    assert path == str(keras_home / "models" / TOP_FILE)
    assert md5(path) == published.md5(TOP_FILE)
    assert cache_contents(keras_home) == with_records(TOP_FILE)
    model = tiny_model()
    pretrained.load_published_weights(model, "tiny", include_top=True)
    for ours, reference in zip(model.get_weights(), published.reference_weights):
        np.testing.assert_array_equal(ours, reference)


def test_notop_file_is_fetched_for_include_top_false(published, keras_home):
    model = tiny_model(include_top=False)
    pretrained.load_published_weights(model, "tiny", include_top=False)
    assert cache_contents(keras_home) == with_records(NOTOP_FILE)
    np.testing.assert_array_equal(model.get_weights()[0], published.reference_weights[0])


def test_cached_file_is_used_with_the_server_stopped(published):
    first = pretrained.fetch("tiny")
    published.server.stop()
    requests = list(published.server.requests)

    assert pretrained.fetch("tiny") == first
    pretrained.load_published_weights(tiny_model(), "tiny", include_top=True)
    assert published.server.requests == requests


def test_a_copy_placed_in_the_cache_by_hand_is_used_offline(published, keras_home):
    published.use_manifest(top=published.entry(TOP_FILE, urls=[published.dead + "/x.h5"]))
    manual = keras_home / "models" / TOP_FILE
    manual.parent.mkdir()
    manual.write_bytes((published.source_dir / TOP_FILE).read_bytes())

    assert pretrained.fetch("tiny") == str(manual)
    assert pretrained.cache_path("tiny") == str(manual)


def test_a_cache_file_name_keeps_another_library_s_file_of_the_same_name(published, keras_home):
    item = {**published.entry(TOP_FILE), "cache_file": "tiny_weights_ours.h5"}
    published.use_manifest(top=item)
    theirs = keras_home / "models" / TOP_FILE
    theirs.parent.mkdir()
    theirs.write_bytes(b"keras.applications' own, different file")

    assert pretrained.fetch("tiny") == str(keras_home / "models" / "tiny_weights_ours.h5")
    assert theirs.read_bytes() == b"keras.applications' own, different file"
    assert published.server.requests == ["/files/" + TOP_FILE]  # the mirror name is the file's


def test_mirror_is_used_when_the_manifest_urls_are_dead(published, monkeypatch):
    published.use_manifest(top=published.entry(TOP_FILE, urls=[published.dead + "/" + TOP_FILE]))
    monkeypatch.setenv(pretrained.MIRROR_ENV, published.server.base + "/files/")

    path = pretrained.fetch("tiny")
    assert md5(path) == published.md5(TOP_FILE)
    assert published.server.requests == [f"/files/{TOP_FILE}"]


def test_mirror_comes_before_the_manifest_urls(published, monkeypatch):
    monkeypatch.setenv(pretrained.MIRROR_ENV, published.server.base + "/files")  # no trailing slash
    published.use_manifest(top=published.entry(TOP_FILE, kind="page"))
    pretrained.fetch("tiny")
    assert published.server.requests == [f"/files/{TOP_FILE}"]


def test_a_dead_mirror_falls_back_to_the_manifest_urls(published, monkeypatch):
    monkeypatch.setenv(pretrained.MIRROR_ENV, published.dead)
    assert md5(pretrained.fetch("tiny")) == published.md5(TOP_FILE)


@pytest.mark.parametrize("md5_published", [True, False])
@pytest.mark.parametrize("as_url", [True, False])
def test_a_local_directory_works_as_mirror(published, monkeypatch, as_url, md5_published):
    published.use_manifest(top=published.entry(TOP_FILE, md5="" if md5_published else None))
    published.server.stop()
    directory = published.source_dir
    monkeypatch.setenv(pretrained.MIRROR_ENV, directory.as_uri() if as_url else str(directory))
    assert md5(pretrained.fetch("tiny")) == published.md5(TOP_FILE)


def test_plain_http_without_md5_is_refused_unless_the_mirror_is_trusted(
    published, keras_home, monkeypatch
):
    published.use_manifest(top=published.entry(TOP_FILE, md5=None))
    with pytest.raises(
        pretrained.WeightsDownloadError, match="refused: http URL is not authenticated"
    ):
        pretrained.fetch("tiny")
    assert published.server.requests == [] and cache_contents(keras_home) == []

    monkeypatch.setenv(pretrained.ALLOW_HTTP_ENV, "1")
    assert md5(pretrained.fetch("tiny")) == published.md5(TOP_FILE)


@pytest.fixture
def https_server(published, tmp_path, monkeypatch):
    """`https_server(redirect_to)`: a server of the published files over https (a test CA, trusted
    through SSL_CERT_FILE), its /redirect/NAME sending to `redirect_to` + /files/NAME."""
    import trustme  # in the test extra

    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    servers = []

    def start(redirect_to):
        certificate = authority.issue_cert("127.0.0.1")
        servers.append(WeightsServer(str(published.source_dir), certificate, redirect_to))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_https_without_md5_may_not_redirect_to_plain_http(published, keras_home, https_server):
    redirect = https_server(redirect_to=published.server.base).url("redirect", TOP_FILE)
    published.use_manifest(top=published.entry(TOP_FILE, urls=[redirect], md5=None))
    opener = urllib.request._opener  # urllib's, process-wide, which the download swaps for a while
    with pytest.raises(
        pretrained.WeightsDownloadError,
        match=rf"{redirect}\n    refused: it redirects to http://127\.0\.0\.1:\d+/files/{TOP_FILE}, "
        "which is not https",
    ):
        pretrained.fetch("tiny")
    assert published.server.requests == [], "nothing was fetched over plain http"
    assert cache_contents(keras_home) == []
    assert urllib.request._opener is opener, "urllib's own redirect handling is back"

    published.trust_http()  # the user vouches for the mirror: the redirect is followed
    assert md5(pretrained.fetch("tiny")) == published.md5(TOP_FILE)


def test_https_without_md5_may_redirect_to_https(published, https_server):
    target = https_server(redirect_to=None)
    redirect = https_server(redirect_to=target.base).url("redirect", TOP_FILE)
    published.use_manifest(top=published.entry(TOP_FILE, urls=[redirect], md5=None))
    assert md5(pretrained.fetch("tiny")) == published.md5(TOP_FILE)
    assert target.requests == [f"/files/{TOP_FILE}"]


# The sha256 recorded when a file enters the cache ----------------------------------------------


def recorded(path):
    """The sha256 line of the cached `path`'s record (comment lines left out)."""
    text = (path.parent / f".{path.name}.sha256").read_text()
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))


def test_a_download_records_its_sha256_and_source_beside_it_in_sha256sum_format(
    published, keras_home
):
    path = keras_home / "models" / TOP_FILE
    pretrained.fetch("tiny")
    record = path.parent / f".{TOP_FILE}.sha256"
    assert record.read_text() == (
        f"# downloaded by keras-nets from {published.server.url('files', TOP_FILE)}\n"
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {TOP_FILE}\n"
    )
    if shutil.which("sha256sum"):  # the comment line is one `sha256sum -c` skips
        subprocess.run(["sha256sum", "-c", "--strict", record.name], cwd=path.parent, check=True)


def test_a_copy_placed_by_hand_is_recorded_at_first_use_and_checked_after(published, keras_home):
    manual = keras_home / "models" / TOP_FILE
    manual.parent.mkdir()
    manual.write_bytes((published.source_dir / TOP_FILE).read_bytes())
    pretrained.fetch("tiny")
    assert recorded(manual).startswith(hashlib.sha256(manual.read_bytes()).hexdigest())

    pretrained.record_sha256(manual, "f" * 64)
    with pytest.raises(
        pretrained.CachedFileChanged, match=rf"{TOP_FILE} .*it changed since it entered"
    ):
        pretrained.fetch("tiny")
    assert manual.read_bytes() == (published.source_dir / TOP_FILE).read_bytes()  # not deleted


def test_a_file_under_the_record_s_name_that_is_not_a_record_is_left_alone(published, keras_home):
    manual = keras_home / "models" / TOP_FILE
    manual.parent.mkdir()
    manual.write_bytes((published.source_dir / TOP_FILE).read_bytes())
    notes = keras_home / "models" / f".{TOP_FILE}.sha256"
    notes.write_text("the user's own notes, not a sha256")

    assert pretrained.fetch("tiny") == str(manual)
    assert notes.read_text() == "the user's own notes, not a sha256"


def test_a_changed_file_without_md5_is_an_error_at_load_not_loaded(published, keras_home):
    published.trust_http()
    published.use_manifest(top=published.entry(TOP_FILE, md5=None))
    pretrained.fetch("tiny")
    with h5py.File(keras_home / "models" / TOP_FILE, "r+") as f:  # still fits the model
        f["predictions"]["predictions"]["bias:0"][...] = 0
    with pytest.raises(pretrained.CachedFileChanged, match="keras-nets weights download tiny"):
        pretrained.load_published_weights(tiny_model(), "tiny", include_top=True)


# Every way it goes wrong -----------------------------------------------------------------------


def test_no_network_and_no_cache_names_file_urls_failures_and_cache_path(published, keras_home):
    urls = [published.dead + "/original/" + TOP_FILE, published.dead + "/mirror/" + TOP_FILE]
    published.use_manifest(top=published.entry(TOP_FILE, urls=urls))

    with pytest.raises(pretrained.WeightsDownloadError) as raised:
        pretrained.fetch("tiny")
    message = str(raised.value)
    assert f"could not download {TOP_FILE}" in message
    for url in urls:
        assert f"  {url}\n    [Errno 111] Connection refused" in message
    assert f"copy it to\n  {keras_home / 'models' / TOP_FILE}\n" in message
    assert cache_contents(keras_home) == []


def test_md5_mismatch_names_file_and_both_hashes_and_keeps_nothing(published, keras_home):
    published.use_manifest(top=published.entry(TOP_FILE, md5="0" * 32))

    with pytest.raises(pretrained.WeightsDownloadError) as raised:
        pretrained.fetch("tiny")
    message = str(raised.value)
    assert TOP_FILE in message
    assert f"md5 mismatch: expected {'0' * 32}, got {published.md5(TOP_FILE)}" in message
    assert cache_contents(keras_home) == []


def sha256_entry(published, name=TOP_FILE, sha256="", **more):
    """A manifest entry published as Keras 3 publishes ConvNeXt's files: a sha256, md5 null."""
    digest = hashlib.sha256((published.source_dir / name).read_bytes()).hexdigest()
    return published.entry(name, md5=None, sha256=digest if sha256 == "" else sha256, **more)


def test_a_published_sha256_checks_the_download_as_an_md5_does(published, keras_home):
    """Plain http is no problem then (the hash is checked, as with an md5), the file loads, and
    a copy that differs from the sha256 is refused naming both hashes, keeping nothing."""
    published.use_manifest(top=sha256_entry(published))
    path = pretrained.fetch("tiny")
    assert md5(path) == published.md5(TOP_FILE)
    assert cache_contents(keras_home) == with_records(TOP_FILE)
    pretrained.load_published_weights(tiny_model(), "tiny", include_top=True)

    shutil.rmtree(keras_home / "models")
    published.use_manifest(top=sha256_entry(published, sha256="0" * 64))
    with pytest.raises(pretrained.WeightsDownloadError) as raised:
        pretrained.fetch("tiny")
    actual = hashlib.sha256((published.source_dir / TOP_FILE).read_bytes()).hexdigest()
    assert f"sha256 mismatch: expected {'0' * 64}, got {actual}" in str(raised.value)
    assert cache_contents(keras_home) == []


def test_a_copy_by_hand_that_is_not_the_file_of_a_published_sha256_is_not_used(
    published, keras_home
):
    published.use_manifest(top=sha256_entry(published))
    cached = keras_home / "models" / TOP_FILE
    cached.parent.mkdir()
    cached.write_bytes((published.source_dir / NOTOP_FILE).read_bytes())  # a valid HDF5 file
    with pytest.raises(pretrained.WeightsDownloadError, match=r"not the published file: sha256"):
        pretrained.fetch("tiny")


def test_md5_mismatch_at_one_url_moves_on_to_the_next(published):
    urls = [published.server.url("page", TOP_FILE), published.server.url("files", TOP_FILE)]
    published.use_manifest(top=published.entry(TOP_FILE, urls=urls))
    assert md5(pretrained.fetch("tiny")) == published.md5(TOP_FILE)


# What is under the cache name already: replaced only when keras-nets provably wrote it -----------


def copied_by_hand(published, cached):
    cached.write_bytes(b"an older, different file")


def copied_by_hand_and_recorded_at_first_use(published, cached):
    cached.write_bytes(b"an older, different file")
    pretrained.record_sha256(cached, hashlib.sha256(cached.read_bytes()).hexdigest())


def downloaded_then_changed(published, cached):
    pretrained.fetch("tiny")
    with open(cached, "ab") as f:
        f.write(b"appended by hand")


def downloaded_then_republished(published, cached):
    """Our download; then the published file (and the manifest's md5) changed."""
    pretrained.fetch("tiny")
    (published.source_dir / TOP_FILE).write_bytes((published.source_dir / NOTOP_FILE).read_bytes())
    published.use_manifest()


def downloaded_then_republished_offline(published, cached):
    downloaded_then_republished(published, cached)
    published.use_manifest(top=published.entry(TOP_FILE, urls=[published.dead + "/" + TOP_FILE]))


NOT_OURS = "keras-nets did not download it .* so it is left as it is: move it away and run"
# (what is under the cache name, the error (None: fetch succeeds), whether the file there is replaced)
CACHED_FILE_CASES = {
    "copied by hand": (copied_by_hand, NOT_OURS, False),
    "copied by hand, recorded at first use": (
        copied_by_hand_and_recorded_at_first_use,
        NOT_OURS,
        False,
    ),
    "downloaded, then changed": (downloaded_then_changed, NOT_OURS, False),
    "downloaded, then republished": (downloaded_then_republished, None, True),
    "downloaded, then republished, offline": (
        downloaded_then_republished_offline,
        "(?s)could not download.*downloaded by keras-nets earlier, is no longer the published "
        r"file \(md5 mismatch.*it was kept, and is replaced once a valid copy is downloaded",
        False,
    ),
}


@pytest.mark.parametrize("case", CACHED_FILE_CASES)
def test_a_cached_file_that_is_not_the_published_one_is_replaced_only_if_we_wrote_it(
    case, published, keras_home
):
    setup, error, replaced = CACHED_FILE_CASES[case]
    cached = keras_home / "models" / TOP_FILE
    cached.parent.mkdir()
    setup(published, cached)
    before = cached.read_bytes()
    requests = len(published.server.requests)

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        if error is None:
            assert pretrained.fetch("tiny") == str(cached)
        else:
            with pytest.raises(pretrained.WeightsDownloadError, match=error) as raised:
                pretrained.fetch("tiny")
            assert "\n" not in str(raised.value) or "could not download" in str(raised.value)

    if replaced:
        assert md5(cached) == published.md5(TOP_FILE)
        assert recorded(cached).startswith(hashlib.sha256(cached.read_bytes()).hexdigest())
    else:
        assert cached.read_bytes() == before, "the file under the cache name was touched"
    if error == NOT_OURS:
        assert len(published.server.requests) == requests, "nothing was downloaded"
    assert cache_contents(keras_home) == (
        [TOP_FILE] if case == "copied by hand" else with_records(TOP_FILE)
    )


@pytest.mark.parametrize("md5_published", [True, False])
def test_truncated_body_is_reported_and_not_cached(published, keras_home, md5_published):
    published.trust_http()
    published.use_manifest(
        top=published.entry(TOP_FILE, kind="truncated", md5="" if md5_published else None)
    )
    incomplete = (
        r"truncated download, discarded \(retrieval incomplete: got only \d+ out of \d+ bytes"
    )
    with pytest.raises(pretrained.WeightsDownloadError, match=incomplete):
        pretrained.fetch("tiny")
    assert cache_contents(keras_home) == []


# Misbehaving sources: bounded in time and size, special files never read --------------------------


def served(kind, **more):
    def setup(published, tmp_path, monkeypatch):
        return published.entry(TOP_FILE, kind=kind, **more)

    return setup


def local_mirror_holding(make):
    """KERAS_NETS_WEIGHTS_URL a local folder where the file's name is `make`'s special file."""

    def setup(published, tmp_path, monkeypatch):
        mirror = tmp_path / "mirror"
        mirror.mkdir()
        make(mirror / TOP_FILE)
        monkeypatch.setenv(pretrained.MIRROR_ENV, str(mirror))
        return published.entry(TOP_FILE, urls=[])

    return setup


def as_file_url(path):
    def setup(published, tmp_path, monkeypatch):
        return published.entry(TOP_FILE, urls=[f"file://{path}"])

    return setup


SPECIAL = r"is not a regular file \(a FIFO, device, \.\.\.\); not read"
# (the source, the reason given for it: every case ends, within seconds, keeping nothing)
MISBEHAVING_SOURCES = {
    "stalls after 1,000 bytes": (
        served("stall"),
        r"no data for 0\.5 s after 1,000 bytes; gave up \(timeout\)",
    ),
    "never answers": (served("silent"), r"no data for 0\.5 s after 0 bytes; gave up \(timeout\)"),
    "announces more than the bound": (
        served("bloated", max_bytes=100_000),
        rf"it announces 300,000,000 bytes: more than 100,000 bytes, the bound for {TOP_FILE}",
    ),
    "sends more than the bound, unannounced": (
        served("endless", max_bytes=100_000),
        r"it sent more than 100,000 bytes, the bound",
    ),
    "a FIFO in a local mirror": (local_mirror_holding(os.mkfifo), SPECIAL),
    "a directory in a local mirror": (local_mirror_holding(os.mkdir), SPECIAL),
    "a device as file: URL": (as_file_url("/dev/zero"), SPECIAL),
    "a URL without a scheme": (
        lambda published, tmp_path, monkeypatch: published.entry(TOP_FILE, urls=["weights/x.h5"]),
        "unknown url type: 'weights/x.h5'",
    ),
}


@pytest.mark.parametrize("case", MISBEHAVING_SOURCES)
def test_a_misbehaving_source_is_given_up_in_one_line_keeping_nothing(
    case, published, keras_home, tmp_path, monkeypatch
):
    setup, reason = MISBEHAVING_SOURCES[case]
    monkeypatch.setattr(pretrained, "DOWNLOAD_TIMEOUT", 0.5)
    published.use_manifest(top=setup(published, tmp_path, monkeypatch))
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_fetch_error()), daemon=True)
    worker.start()
    worker.join(timeout=60)

    assert not worker.is_alive(), "the download hangs"
    (error,) = outcome
    assert isinstance(error, pretrained.WeightsDownloadError), error
    assert re.search(rf"\n    [^\n]*{reason}[^\n]*\n", str(error)), str(error)
    assert cache_contents(keras_home) == []
    assert all(sent < 50 * 2**20 for sent in published.server.sent.values())


class FullDisk:
    """`open` for the download's file, whose writes fail as on a full disk after 4,000 bytes."""

    def __init__(self, path, mode):
        self.file, self.written = open(path, mode), 0

    def write(self, data):
        if self.written + len(data) > 4000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        return self.file.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def disk_full(monkeypatch):
    monkeypatch.setattr(pretrained, "CHUNK", 1000)
    # only the new file of the download ("x" mode); every read as it is. `open` is a builtin, not
    # a name of the module, so it is set where the download runs, not through the old path.
    monkeypatch.setattr(
        "keras_nets.weights.download.open",
        lambda path, mode="r", **kw: (
            FullDisk(path, mode) if "x" in mode else open(path, mode, **kw)
        ),
        raising=False,
    )


def read_only_cache(monkeypatch):  # stands in for chmod, which root ignores
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(pretrained.tempfile, "mkdtemp", refuse)


CACHE_WRITE_FAILURES = {
    "disk full during the download": (
        disk_full,
        r"tiny_weights\.h5\n    cannot write .*tiny_weights\.h5: No space left on device; nothing kept",
    ),
    "read-only cache": (
        read_only_cache,
        r"^cannot write in the weights cache .*models: Permission denied; set KERAS_HOME",
    ),
}


@pytest.mark.parametrize("case", CACHE_WRITE_FAILURES)
def test_a_cache_that_cannot_be_written_is_one_error_keeping_nothing(
    case, published, keras_home, monkeypatch
):
    (keras_home / "models").mkdir()
    setup, message = CACHE_WRITE_FAILURES[case]
    setup(monkeypatch)
    with pytest.raises(pretrained.WeightsDownloadError, match=message):
        pretrained.fetch("tiny")
    assert cache_contents(keras_home) == []


def _fetch_error():
    try:
        pretrained.fetch("tiny")
    except Exception as error:
        return error
    return None


def test_size_bounds_follow_the_parameter_counts_of_the_largest_published_variants():
    """MAX_PARAMETERS are the README's counts, and MobileNet's and MobileNetV2's widest variants';
    4 bytes a parameter is float32, what every published file holds."""
    from keras_nets import create_model

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = dict(re.findall(r"^\| `(\w+)` \| `\w+` \| [^|]+ \| ([\d,]+) \|", readme, re.M))
    widest = {"mobilenet": {"alpha": 1.0}, "mobilenet_v2": {"alpha": 1.4}}
    for model, parameters in pretrained.MAX_PARAMETERS.items():
        if model in widest:
            built = create_model(model, weights=None, **widest[model])
            assert parameters == built.count_params(), model
            keras.backend.clear_session()
        else:
            assert parameters == int(table[model].replace(",", "")), model
    packaged = json.loads(pretrained.PACKAGED_MANIFEST.read_text())["models"]
    assert {pretrained.model_of(key) for key in packaged} == set(pretrained.MAX_PARAMETERS)
    # MobileNetV2 0.35 at 96 px (a 1.7 MB file) may not take 300 MB; VGG19's 575 MB file fits
    assert pretrained.size_bound("mobilenet_v2_0.35_96") < 40e6
    assert pretrained.size_bound("vgg19") > 574_710_816 * 1.05


def test_truncated_body_without_length_and_without_md5_is_caught_as_truncated_hdf5(
    published, keras_home
):
    published.trust_http()
    published.use_manifest(top=published.entry(TOP_FILE, kind="unsized", md5=None))
    with pytest.raises(pretrained.WeightsDownloadError) as raised:
        pretrained.fetch("tiny")
    assert TOP_FILE in str(raised.value)
    assert "truncated or damaged HDF5 file" in str(raised.value)
    assert cache_contents(keras_home) == []


def test_a_page_instead_of_the_file_is_reported_as_not_hdf5(published, keras_home):
    published.trust_http()
    published.use_manifest(top=published.entry(TOP_FILE, kind="page", md5=None))
    with pytest.raises(
        pretrained.WeightsDownloadError, match=r"not an HDF5 file \(it starts with b'<!DOCTYPE"
    ):
        pretrained.fetch("tiny")
    assert cache_contents(keras_home) == []


def test_an_interrupted_download_leaves_nothing_under_the_final_name(
    published, keras_home, monkeypatch
):
    written = []

    def interrupted(progress, current, *args, **kwargs):  # after the first piece was written
        written.append(current)
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.utils.Progbar, "update", interrupted)
    monkeypatch.setattr(pretrained, "CHUNK", 1000)
    with pytest.raises(KeyboardInterrupt):
        pretrained.fetch("tiny")
    assert len(written) == 1 and 0 < written[0] <= 1000
    assert cache_contents(keras_home) == []


def test_leftovers_of_a_killed_download_are_cleared_but_not_a_running_one(published, keras_home):
    models = keras_home / "models"
    killed, running = (
        models / f".{TOP_FILE}.killed.partial",
        models / f".{TOP_FILE}.running.partial",
    )
    for leftover in (killed, running):
        leftover.mkdir(parents=True)
        (leftover / TOP_FILE).write_bytes(b"half a file")
    two_days_ago = killed.stat().st_mtime - 2 * pretrained.STALE_SECONDS
    os.utime(killed, (two_days_ago, two_days_ago))

    pretrained.fetch("tiny")
    assert cache_contents(keras_home) == sorted([*with_records(TOP_FILE), running.name])


def test_two_processes_downloading_at_once_both_succeed_with_one_valid_file(published, keras_home):
    # The server answers neither request before both have arrived, so the downloads overlap.
    published.use_manifest(top=published.entry(TOP_FILE, kind="together"))
    code = "from keras_nets import pretrained; print(pretrained.fetch('tiny'))"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [process.communicate(timeout=240) for process in processes]

    for process, (out, err) in zip(processes, results):
        assert process.returncode == 0, err
        assert out.strip().splitlines()[-1] == str(keras_home / "models" / TOP_FILE)
    assert published.server.requests == [f"/together/{TOP_FILE}"] * 2
    assert md5(keras_home / "models" / TOP_FILE) == published.md5(TOP_FILE)
    assert cache_contents(keras_home) == with_records(TOP_FILE)
    assert recorded(keras_home / "models" / TOP_FILE).startswith(
        hashlib.sha256((keras_home / "models" / TOP_FILE).read_bytes()).hexdigest()
    )


def test_weights_of_another_variant_name_model_and_file(published):
    top_file = published.source_dir / TOP_FILE
    with pytest.raises(ValueError) as raised:
        pretrained.load_weights_file(tiny_model(include_top=False), top_file)
    message = str(raised.value)
    assert f"the weights file {top_file} does not fit model 'tiny'" in message
    assert (
        "the file has 3 layers with weights (conv ... predictions), the model 2 (conv ... bn)"
        in message
    )


def test_weights_of_another_width_name_model_and_file(published):
    top_file = published.source_dir / TOP_FILE
    with pytest.raises(
        ValueError, match=rf"{top_file} does not fit model 'tiny': Shape mismatch"
    ) as raised:
        pretrained.load_weights_file(tiny_model(filters=5), top_file)
    assert "another model or variant" in str(raised.value)


def test_a_wrong_file_without_md5_is_removed_when_it_does_not_fit(published, keras_home):
    # The server hands out the notop file under the top file's name; with no md5 to check,
    # only the layer count can tell.
    (published.source_dir / "mislabelled.h5").write_bytes(
        (published.source_dir / NOTOP_FILE).read_bytes()
    )
    mislabelled = published.server.url("files", "mislabelled.h5")
    published.trust_http()
    published.use_manifest(top={"file": TOP_FILE, "urls": [mislabelled], "md5": None})

    with pytest.raises(
        ValueError, match="(?s)does not fit model 'tiny'.*it was removed from the cache"
    ):
        pretrained.load_published_weights(tiny_model(), "tiny", include_top=True)
    assert cache_contents(keras_home) == []


def test_a_copy_by_hand_without_md5_that_does_not_fit_is_reported_and_kept(published, keras_home):
    published.use_manifest(top=published.entry(TOP_FILE, md5=None))
    manual = keras_home / "models" / TOP_FILE
    manual.parent.mkdir()
    manual.write_bytes((published.source_dir / NOTOP_FILE).read_bytes())  # the other variant

    with pytest.raises(
        ValueError, match="(?s)does not fit model 'tiny'.*left in the cache as it is"
    ):
        pretrained.load_published_weights(tiny_model(), "tiny", include_top=True)
    assert manual.read_bytes() == (published.source_dir / NOTOP_FILE).read_bytes()
    assert published.server.requests == []


def test_a_keras3_weights_file_under_a_published_name_is_named_as_another_format(
    published, keras_home
):
    # Someone saved their own tiny model with model.save_weights and put it where the published
    # file (a legacy Keras HDF5 file) goes: even when its shapes fit, it is not those weights.
    cached = keras_home / "models" / TOP_FILE
    cached.parent.mkdir(parents=True)
    tiny_model().save_weights(keras_home / "mine.weights.h5")
    os.replace(keras_home / "mine.weights.h5", cached)
    published.use_manifest(top={"file": TOP_FILE, "urls": [], "md5": None})

    with pytest.raises(ValueError) as raised:
        pretrained.load_published_weights(tiny_model(), "tiny", include_top=True)
    message = str(raised.value)
    assert f"the weights file {cached} is a Keras 3 .weights.h5 file" in message
    assert "another format than the published 'tiny' file" in message
    assert "another model or variant" not in message
    assert "left in the cache as it is" in message  # copied by hand: the user's file
    assert cached.exists()


def test_a_keras3_weights_file_of_another_model_says_what_it_is(tmp_path):
    tiny_model(filters=5).save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(
        ValueError,
        match="It is a Keras 3 .weights.h5 file, with the weights of another model or variant",
    ):
        pretrained.load_weights_file(tiny_model(), tmp_path / "other.weights.h5")


def test_non_hdf5_and_truncated_user_files_are_named(tmp_path):
    page = tmp_path / "weights.h5"
    page.write_text("<html>not found</html>")
    with pytest.raises(ValueError, match=rf"the weights file {page} is not an HDF5 file"):
        pretrained.load_weights_file(tiny_model(), page)

    full = write_legacy_h5(tiny_model(), tmp_path / "full.h5")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(full.read_bytes()[:-100])
    with pytest.raises(
        ValueError, match=rf"the weights file {cut} is a truncated or damaged HDF5 file"
    ):
        pretrained.load_weights_file(tiny_model(), cut)


def test_layer_names_split_over_several_attributes_are_read(published, tmp_path):
    # Keras splits the layer_names attribute of large models (DenseNet201, ...) into chunks.
    path = tmp_path / "chunked.h5"
    path.write_bytes((published.source_dir / TOP_FILE).read_bytes())
    with h5py.File(path, "r+") as f:
        names = list(f.attrs.pop("layer_names"))
        f.attrs["layer_names0"], f.attrs["layer_names1"] = names[:2], names[2:]
    model = tiny_model()
    pretrained.load_weights_file(model, path)
    np.testing.assert_array_equal(model.get_weights()[-1], published.reference_weights[-1])
    with pytest.raises(ValueError, match="the file has 3 layers with weights"):
        pretrained.load_weights_file(tiny_model(include_top=False), path)


def test_downloads_are_loaded_as_weights_never_as_models(published, monkeypatch):
    # A whole-model .h5 carries a model config; only its weights may ever be read.
    whole = tiny_model()
    whole.set_weights(published.reference_weights)
    whole.save(published.source_dir / "whole_model.h5")
    with h5py.File(published.source_dir / "whole_model.h5") as f:
        assert "model_config" in f.attrs
    published.use_manifest(top=published.entry("whole_model.h5"))

    def forbidden(*args, **kwargs):
        raise AssertionError("a downloaded file was deserialised as a model")

    for module in (keras.models, keras.saving):
        monkeypatch.setattr(module, "load_model", forbidden)
    model = tiny_model()
    pretrained.load_published_weights(model, "tiny", include_top=True)
    np.testing.assert_array_equal(model.get_weights()[0], published.reference_weights[0])


# The manifest override -------------------------------------------------------------------------


def test_missing_manifest_override_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(pretrained.MANIFEST_ENV, str(tmp_path / "nowhere.json"))
    with pytest.raises(ValueError, match=r"KERAS_NETS_MANIFEST=.*nowhere\.json: No such file"):
        pretrained.fetch("xception")


@pytest.mark.parametrize(
    "entry, problem",
    [
        ({"file": "../../etc/x.h5", "urls": [], "md5": None}, "must be a plain file name"),
        ({"file": "x.h5", "urls": "https://a/x.h5", "md5": None}, "must be a list of URLs"),
        ({"file": "x.h5", "urls": [], "md5": "ABC"}, "32 lowercase hex digits"),
        ({"file": "x.h5", "urls": [], "md5": None, "sha256": "ABC"}, "64 lowercase hex digits"),
        (
            {"file": "x.h5", "urls": [], "md5": "0" * 32, "sha256": "0" * 64},
            "gives both an md5 and a sha256",
        ),
        ({"file": "x.h5", "urls": []}, "KeyError"),
        ({"file": "x" * 230 + ".h5", "urls": [], "md5": None}, "is 233 bytes long: at most 200"),
        (
            {"file": "x.h5", "urls": [], "md5": None, "max_bytes": 0},
            "max_bytes of x.h5 must be a positive",
        ),
    ],
)
def test_malformed_manifest_override_is_rejected(monkeypatch, tmp_path, entry, problem):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"models": {"x": {"top": entry, "notop": entry}}}))
    monkeypatch.setenv(pretrained.MANIFEST_ENV, str(path))
    with pytest.raises(ValueError, match=rf"{path} is not a valid weights manifest.*{problem}"):
        pretrained.manifest()


def test_manifest_override_is_reread_when_it_changes(published, monkeypatch):
    path = published.use_manifest()
    assert list(pretrained.manifest()) == ["tiny"]
    manifest = json.loads(path.read_text())
    manifest["models"]["tiny2"] = manifest["models"]["tiny"]
    path.write_text(json.dumps(manifest, indent=1))
    assert list(pretrained.manifest()) == ["tiny", "tiny2"]


# The whole path through a builder --------------------------------------------------------------


def test_builder_with_weights_imagenet_downloads_caches_and_loads(published, keras_home):
    from keras_nets.mobilenet_v2 import MobileNetV2

    source = MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), include_top=False, weights=None)
    randomize_weights(source, seed=2)
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    write_legacy_h5(source, published.source_dir / name)
    variant = {"top": published.entry(TOP_FILE), "notop": published.entry(name)}
    published.use_manifest(**{"mobilenet_v2_0.35_96": variant})

    model = MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), include_top=False, weights="imagenet")
    assert cache_contents(keras_home) == with_records(name)
    for ours, theirs in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
