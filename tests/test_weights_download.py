"""Published weights: where a file comes from, every way a download goes wrong, what stays cached.

Every test runs offline against a real HTTP server on 127.0.0.1 (tests/weights_server.py) serving
weights files written from a tiny Keras model, listed in a test manifest given by
KERAS_NETS_MANIFEST.
"""

import hashlib
import json
import os
import subprocess
import sys
import urllib.request

import h5py
import keras
import numpy as np
import pytest

from keras_nets import pretrained
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


def test_plain_http_without_md5_is_refused_unless_the_mirror_is_trusted(published, keras_home, monkeypatch):
    published.use_manifest(top=published.entry(TOP_FILE, md5=None))
    with pytest.raises(pretrained.WeightsDownloadError, match="refused: http URL is not authenticated"):
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
    return (path.parent / f".{path.name}.sha256").read_text()


def test_a_download_records_its_sha256_beside_it_in_sha256sum_format(published, keras_home):
    path = keras_home / "models" / TOP_FILE
    pretrained.fetch("tiny")
    assert recorded(path) == f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {TOP_FILE}\n"


def test_a_copy_placed_by_hand_is_recorded_at_first_use_and_checked_after(published, keras_home):
    manual = keras_home / "models" / TOP_FILE
    manual.parent.mkdir()
    manual.write_bytes((published.source_dir / TOP_FILE).read_bytes())
    pretrained.fetch("tiny")
    assert recorded(manual).startswith(hashlib.sha256(manual.read_bytes()).hexdigest())

    pretrained.record_sha256(manual, "f" * 64)
    with pytest.raises(pretrained.CachedFileChanged, match=rf"{TOP_FILE} .*it changed since it entered"):
        pretrained.fetch("tiny")
    assert manual.read_bytes() == (published.source_dir / TOP_FILE).read_bytes()  # not deleted


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


def test_md5_mismatch_at_one_url_moves_on_to_the_next(published):
    urls = [published.server.url("page", TOP_FILE), published.server.url("files", TOP_FILE)]
    published.use_manifest(top=published.entry(TOP_FILE, urls=urls))
    assert md5(pretrained.fetch("tiny")) == published.md5(TOP_FILE)


def test_cached_file_with_the_wrong_md5_is_replaced(published, keras_home):
    cached = keras_home / "models" / TOP_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"an older, different file")

    with pytest.warns(UserWarning, match=r"cached .*tiny_weights\.h5 was removed: md5 mismatch"):
        path = pretrained.fetch("tiny")
    assert md5(path) == published.md5(TOP_FILE)


def test_bad_cached_file_is_removed_even_when_the_download_fails(published, keras_home):
    published.use_manifest(top=published.entry(TOP_FILE, urls=[published.dead + "/x"]))
    cached = keras_home / "models" / TOP_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"garbage")

    with pytest.warns(UserWarning), pytest.raises(pretrained.WeightsDownloadError, match="was removed"):
        pretrained.fetch("tiny")
    assert cache_contents(keras_home) == []


@pytest.mark.parametrize("md5_published", [True, False])
def test_truncated_body_is_reported_and_not_cached(published, keras_home, md5_published):
    published.trust_http()
    published.use_manifest(
        top=published.entry(TOP_FILE, kind="truncated", md5="" if md5_published else None)
    )
    incomplete = r"truncated download, discarded \(retrieval incomplete: got only \d+ out of \d+ bytes"
    with pytest.raises(pretrained.WeightsDownloadError, match=incomplete):
        pretrained.fetch("tiny")
    assert cache_contents(keras_home) == []


def test_truncated_body_without_length_and_without_md5_is_caught_as_truncated_hdf5(published, keras_home):
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
    with pytest.raises(pretrained.WeightsDownloadError, match=r"not an HDF5 file \(it starts with b'<!DOCTYPE"):
        pretrained.fetch("tiny")
    assert cache_contents(keras_home) == []


def test_an_interrupted_download_leaves_nothing_under_the_final_name(published, keras_home, monkeypatch):
    from keras.src.utils import file_utils

    def interrupted(url, filename, reporthook=None):
        with open(filename, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(file_utils, "urlretrieve", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrained.fetch("tiny")
    assert cache_contents(keras_home) == []


def test_leftovers_of_a_killed_download_are_cleared_but_not_a_running_one(published, keras_home):
    models = keras_home / "models"
    killed, running = models / f".{TOP_FILE}.killed.partial", models / f".{TOP_FILE}.running.partial"
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
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
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
    assert "the file has 3 layers with weights (conv ... predictions), the model 2 (conv ... bn)" in message


def test_weights_of_another_width_name_model_and_file(published):
    top_file = published.source_dir / TOP_FILE
    with pytest.raises(ValueError, match=rf"{top_file} does not fit model 'tiny': Shape mismatch") as raised:
        pretrained.load_weights_file(tiny_model(filters=5), top_file)
    assert "another model or variant" in str(raised.value)


def test_a_wrong_file_without_md5_is_removed_when_it_does_not_fit(published, keras_home):
    # The server hands out the notop file under the top file's name; with no md5 to check,
    # only the layer count can tell.
    (published.source_dir / "mislabelled.h5").write_bytes((published.source_dir / NOTOP_FILE).read_bytes())
    mislabelled = published.server.url("files", "mislabelled.h5")
    published.trust_http()
    published.use_manifest(top={"file": TOP_FILE, "urls": [mislabelled], "md5": None})

    with pytest.raises(ValueError, match="(?s)does not fit model 'tiny'.*it was removed from the cache"):
        pretrained.load_published_weights(tiny_model(), "tiny", include_top=True)
    assert cache_contents(keras_home) == []


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
    assert "it was removed from the cache" in message and cache_contents(keras_home) == []


def test_a_keras3_weights_file_of_another_model_says_what_it_is(tmp_path):
    tiny_model(filters=5).save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(ValueError, match="It is a Keras 3 .weights.h5 file, with the weights of "
                                         "another model or variant"):
        pretrained.load_weights_file(tiny_model(), tmp_path / "other.weights.h5")


def test_non_hdf5_and_truncated_user_files_are_named(tmp_path):
    page = tmp_path / "weights.h5"
    page.write_text("<html>not found</html>")
    with pytest.raises(ValueError, match=rf"the weights file {page} is not an HDF5 file"):
        pretrained.load_weights_file(tiny_model(), page)

    full = write_legacy_h5(tiny_model(), tmp_path / "full.h5")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(full.read_bytes()[:-100])
    with pytest.raises(ValueError, match=rf"the weights file {cut} is a truncated or damaged HDF5 file"):
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
        ({"file": "x.h5", "urls": []}, "KeyError"),
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
