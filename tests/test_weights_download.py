"""Published weights: where a file comes from, every way a download goes wrong, what stays cached.

Every test runs offline against a real HTTP server on 127.0.0.1 (http.server in a thread) serving
weights files written from a tiny Keras model, listed in a test manifest given by
KERAS_NETS_MANIFEST. The fixtures here are also used by test_weights_cli.py.
"""

import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading

import h5py
import keras
import numpy as np
import pytest
from keras import layers

from keras_nets import weights
from published_layout import randomize_weights, write_legacy_h5

TOP_FILE = "tiny_weights.h5"
NOTOP_FILE = "tiny_weights_notop.h5"


def tiny_model(include_top=True, filters=4):
    """A five-layer stand-in for a published model: conv, batch norm, pooling, classifier."""
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(filters, 3, name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = layers.Dense(3, name="predictions")(x)
    return keras.Model(inputs, x, name="tiny")


def md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def free_port():
    """A port nothing listens on: connecting to it is refused, like a dead URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WeightsServer:
    """Serves the files of `directory` at /files/NAME and at misbehaving paths:

    /truncated/NAME   announces the full Content-Length, sends half the body and hangs up;
    /unsized/NAME     sends half the body with no Content-Length (the cut cannot be seen);
    /page/NAME        answers 200 with an HTML page instead of the file;
    /together/NAME    holds each request until two have arrived, then sends the file in pieces.
    """

    def __init__(self, directory):
        self.directory = directory
        self.requests = []
        self.barrier = threading.Barrier(2, timeout=120)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                kind, _, name = self.path.strip("/").partition("/")
                path = os.path.join(server.directory, name)
                if kind == "page":
                    return self.reply(b"<!DOCTYPE html><html>Sign in to the network</html>")
                if not os.path.isfile(path):
                    return self.send_error(404)
                body = open(path, "rb").read()
                if kind == "files":
                    self.reply(body)
                elif kind == "truncated":
                    self.reply(body[: len(body) // 2], length=len(body))
                elif kind == "unsized":
                    self.reply(body[: len(body) // 2], length=None)
                elif kind == "together":
                    server.barrier.wait()
                    self.reply(body, pieces=8)
                else:
                    self.send_error(404)

            def reply(self, body, length=-1, pieces=1):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if length is not None:
                    self.send_header("Content-Length", str(len(body) if length == -1 else length))
                self.end_headers()
                step = -(-len(body) // pieces)
                for start in range(0, len(body), step):
                    self.wfile.write(body[start : start + step])
                    self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, kind, name):
        return f"{self.base}/{kind}/{name}"

    def stop(self):
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture(scope="module")
def published_files(tmp_path_factory):
    """The tiny model with random weights, and its top and notop weights files."""
    directory = tmp_path_factory.mktemp("published")
    reference = tiny_model(include_top=True)
    randomize_weights(reference, seed=1)
    write_legacy_h5(reference, directory / TOP_FILE)
    notop = tiny_model(include_top=False)
    notop.set_weights(reference.get_weights()[: len(notop.get_weights())])
    write_legacy_h5(notop, directory / NOTOP_FILE)
    return directory, reference.get_weights()


class PublishedTiny:
    """The test's "published" weights of the tiny model, a server for them and its manifest."""

    def __init__(self, published_files, tmp_path, monkeypatch):
        self.monkeypatch = monkeypatch
        self.tmp_path = tmp_path
        self.source_dir = tmp_path / "published"
        self.source_dir.mkdir()
        for name in (TOP_FILE, NOTOP_FILE):
            (self.source_dir / name).write_bytes((published_files[0] / name).read_bytes())
        self.reference_weights = published_files[1]
        self.server = WeightsServer(str(self.source_dir))
        self.dead = f"http://127.0.0.1:{free_port()}"
        self.use_manifest()

    def md5(self, name):
        return md5(self.source_dir / name)

    def use_manifest(self, top=None, notop=None, **more):
        """Writes a manifest for key "tiny" (entries default to the healthy /files/ URLs)."""
        models = {
            "tiny": {
                "top": top or self.entry(TOP_FILE),
                "notop": notop or self.entry(NOTOP_FILE),
            },
            **more,
        }
        path = self.tmp_path / f"manifest_{len(list(self.tmp_path.glob('manifest_*')))}.json"
        path.write_text(json.dumps({"models": models}))
        self.monkeypatch.setenv(weights.MANIFEST_ENV, str(path))
        return path

    def entry(self, name, kind="files", urls=None, md5=""):
        return {
            "file": name,
            "urls": urls if urls is not None else [self.server.url(kind, name)],
            "md5": self.md5(name) if md5 == "" else md5,
        }


@pytest.fixture
def published(published_files, tmp_path, keras_home, monkeypatch):
    monkeypatch.delenv(weights.MIRROR_ENV, raising=False)
    tiny = PublishedTiny(published_files, tmp_path, monkeypatch)
    yield tiny
    tiny.server.stop()


def cache_contents(keras_home):
    """Every entry of the cache directory, hidden download directories included."""
    models = keras_home / "models"
    return sorted(os.listdir(models)) if models.exists() else []


# Where a file comes from ---------------------------------------------------------------------


def test_first_download_lands_in_the_keras_cache_and_loads(published, keras_home):
    path = weights.fetch("tiny", include_top=True)

    assert path == str(keras_home / "models" / TOP_FILE)
    assert md5(path) == published.md5(TOP_FILE)
    assert cache_contents(keras_home) == [TOP_FILE]
    model = tiny_model()
    weights.load_published_weights(model, "tiny", include_top=True)
    for ours, reference in zip(model.get_weights(), published.reference_weights):
        np.testing.assert_array_equal(ours, reference)


def test_notop_file_is_fetched_for_include_top_false(published, keras_home):
    model = tiny_model(include_top=False)
    weights.load_published_weights(model, "tiny", include_top=False)
    assert cache_contents(keras_home) == [NOTOP_FILE]
    np.testing.assert_array_equal(model.get_weights()[0], published.reference_weights[0])


def test_cached_file_is_used_with_the_server_stopped(published):
    first = weights.fetch("tiny")
    published.server.stop()
    requests = list(published.server.requests)

    assert weights.fetch("tiny") == first
    weights.load_published_weights(tiny_model(), "tiny", include_top=True)
    assert published.server.requests == requests


def test_a_copy_placed_in_the_cache_by_hand_is_used_offline(published, keras_home):
    published.use_manifest(top=published.entry(TOP_FILE, urls=[published.dead + "/x.h5"]))
    manual = keras_home / "models" / TOP_FILE
    manual.parent.mkdir()
    manual.write_bytes((published.source_dir / TOP_FILE).read_bytes())

    assert weights.fetch("tiny") == str(manual)
    assert weights.cache_path("tiny") == str(manual)


def test_a_cache_file_name_keeps_another_library_s_file_of_the_same_name(published, keras_home):
    item = {**published.entry(TOP_FILE), "cache_file": "tiny_weights_ours.h5"}
    published.use_manifest(top=item)
    theirs = keras_home / "models" / TOP_FILE
    theirs.parent.mkdir()
    theirs.write_bytes(b"keras.applications' own, different file")

    assert weights.fetch("tiny") == str(keras_home / "models" / "tiny_weights_ours.h5")
    assert theirs.read_bytes() == b"keras.applications' own, different file"
    assert published.server.requests == ["/files/" + TOP_FILE]  # the mirror name is the file's


def test_mirror_is_used_when_the_manifest_urls_are_dead(published, monkeypatch):
    published.use_manifest(top=published.entry(TOP_FILE, urls=[published.dead + "/" + TOP_FILE]))
    monkeypatch.setenv(weights.MIRROR_ENV, published.server.base + "/files/")

    path = weights.fetch("tiny")
    assert md5(path) == published.md5(TOP_FILE)
    assert published.server.requests == [f"/files/{TOP_FILE}"]


def test_mirror_comes_before_the_manifest_urls(published, monkeypatch):
    monkeypatch.setenv(weights.MIRROR_ENV, published.server.base + "/files")  # no trailing slash
    published.use_manifest(top=published.entry(TOP_FILE, kind="page"))
    weights.fetch("tiny")
    assert published.server.requests == [f"/files/{TOP_FILE}"]


def test_a_dead_mirror_falls_back_to_the_manifest_urls(published, monkeypatch):
    monkeypatch.setenv(weights.MIRROR_ENV, published.dead)
    assert md5(weights.fetch("tiny")) == published.md5(TOP_FILE)


@pytest.mark.parametrize("as_url", [True, False])
def test_a_local_directory_works_as_mirror(published, monkeypatch, as_url):
    published.server.stop()
    directory = published.source_dir
    monkeypatch.setenv(weights.MIRROR_ENV, directory.as_uri() if as_url else str(directory))
    assert md5(weights.fetch("tiny")) == published.md5(TOP_FILE)


# Every way it goes wrong -----------------------------------------------------------------------


def test_no_network_and_no_cache_names_file_urls_failures_and_cache_path(published, keras_home):
    urls = [published.dead + "/original/" + TOP_FILE, published.dead + "/mirror/" + TOP_FILE]
    published.use_manifest(top=published.entry(TOP_FILE, urls=urls))

    with pytest.raises(weights.WeightsDownloadError) as raised:
        weights.fetch("tiny")
    message = str(raised.value)
    assert f"could not download {TOP_FILE}" in message
    for url in urls:
        assert f"  {url}\n    [Errno 111] Connection refused" in message
    assert f"copy it to\n  {keras_home / 'models' / TOP_FILE}\n" in message
    assert cache_contents(keras_home) == []


def test_md5_mismatch_names_file_and_both_hashes_and_keeps_nothing(published, keras_home):
    published.use_manifest(top=published.entry(TOP_FILE, md5="0" * 32))

    with pytest.raises(weights.WeightsDownloadError) as raised:
        weights.fetch("tiny")
    message = str(raised.value)
    assert TOP_FILE in message
    assert f"md5 mismatch: expected {'0' * 32}, got {published.md5(TOP_FILE)}" in message
    assert cache_contents(keras_home) == []


def test_md5_mismatch_at_one_url_moves_on_to_the_next(published):
    urls = [published.server.url("page", TOP_FILE), published.server.url("files", TOP_FILE)]
    published.use_manifest(top=published.entry(TOP_FILE, urls=urls))
    assert md5(weights.fetch("tiny")) == published.md5(TOP_FILE)


def test_cached_file_with_the_wrong_md5_is_replaced(published, keras_home):
    cached = keras_home / "models" / TOP_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"an older, different file")

    with pytest.warns(UserWarning, match=r"cached .*tiny_weights\.h5 was removed: md5 mismatch"):
        path = weights.fetch("tiny")
    assert md5(path) == published.md5(TOP_FILE)


def test_bad_cached_file_is_removed_even_when_the_download_fails(published, keras_home):
    published.use_manifest(top=published.entry(TOP_FILE, urls=[published.dead + "/x"]))
    cached = keras_home / "models" / TOP_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"garbage")

    with pytest.warns(UserWarning), pytest.raises(weights.WeightsDownloadError, match="was removed"):
        weights.fetch("tiny")
    assert cache_contents(keras_home) == []


@pytest.mark.parametrize("md5_published", [True, False])
def test_truncated_body_is_reported_and_not_cached(published, keras_home, md5_published):
    published.use_manifest(
        top=published.entry(TOP_FILE, kind="truncated", md5="" if md5_published else None)
    )
    incomplete = r"truncated download, discarded \(retrieval incomplete: got only \d+ out of \d+ bytes"
    with pytest.raises(weights.WeightsDownloadError, match=incomplete):
        weights.fetch("tiny")
    assert cache_contents(keras_home) == []


def test_truncated_body_without_length_and_without_md5_is_caught_as_truncated_hdf5(published, keras_home):
    published.use_manifest(top=published.entry(TOP_FILE, kind="unsized", md5=None))
    with pytest.raises(weights.WeightsDownloadError) as raised:
        weights.fetch("tiny")
    assert TOP_FILE in str(raised.value)
    assert "truncated or damaged HDF5 file" in str(raised.value)
    assert cache_contents(keras_home) == []


def test_a_page_instead_of_the_file_is_reported_as_not_hdf5(published, keras_home):
    published.use_manifest(top=published.entry(TOP_FILE, kind="page", md5=None))
    with pytest.raises(weights.WeightsDownloadError, match=r"not an HDF5 file \(it starts with b'<!DOCTYPE"):
        weights.fetch("tiny")
    assert cache_contents(keras_home) == []


def test_an_interrupted_download_leaves_nothing_under_the_final_name(published, keras_home, monkeypatch):
    from keras.src.utils import file_utils

    def interrupted(url, filename, reporthook=None):
        with open(filename, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(file_utils, "urlretrieve", interrupted)
    with pytest.raises(KeyboardInterrupt):
        weights.fetch("tiny")
    assert cache_contents(keras_home) == []


def test_leftovers_of_a_killed_download_are_cleared_but_not_a_running_one(published, keras_home):
    models = keras_home / "models"
    killed, running = models / f".{TOP_FILE}.killed.partial", models / f".{TOP_FILE}.running.partial"
    for leftover in (killed, running):
        leftover.mkdir(parents=True)
        (leftover / TOP_FILE).write_bytes(b"half a file")
    two_days_ago = killed.stat().st_mtime - 2 * weights.STALE_SECONDS
    os.utime(killed, (two_days_ago, two_days_ago))

    weights.fetch("tiny")
    assert cache_contents(keras_home) == sorted([TOP_FILE, running.name])


def test_two_processes_downloading_at_once_both_succeed_with_one_valid_file(published, keras_home):
    # The server answers neither request before both have arrived, so the downloads overlap.
    published.use_manifest(top=published.entry(TOP_FILE, kind="together"))
    code = "from keras_nets import weights; print(weights.fetch('tiny'))"
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
    assert cache_contents(keras_home) == [TOP_FILE]


def test_weights_of_another_variant_name_model_and_file(published):
    top_file = published.source_dir / TOP_FILE
    with pytest.raises(ValueError) as raised:
        weights.load_weights_file(tiny_model(include_top=False), top_file)
    message = str(raised.value)
    assert f"the weights file {top_file} does not fit model 'tiny'" in message
    assert "the file has 3 layers with weights (conv ... predictions), the model 2 (conv ... bn)" in message


def test_weights_of_another_width_name_model_and_file(published):
    top_file = published.source_dir / TOP_FILE
    with pytest.raises(ValueError, match=rf"{top_file} does not fit model 'tiny': Shape mismatch") as raised:
        weights.load_weights_file(tiny_model(filters=5), top_file)
    assert "another model or variant" in str(raised.value)


def test_a_wrong_file_without_md5_is_removed_when_it_does_not_fit(published, keras_home):
    # The server hands out the notop file under the top file's name; with no md5 to check,
    # only the layer count can tell.
    (published.source_dir / "mislabelled.h5").write_bytes((published.source_dir / NOTOP_FILE).read_bytes())
    mislabelled = published.server.url("files", "mislabelled.h5")
    published.use_manifest(top={"file": TOP_FILE, "urls": [mislabelled], "md5": None})

    with pytest.raises(ValueError, match="(?s)does not fit model 'tiny'.*it was removed from the cache"):
        weights.load_published_weights(tiny_model(), "tiny", include_top=True)
    assert cache_contents(keras_home) == []


def test_non_hdf5_and_truncated_user_files_are_named(tmp_path):
    page = tmp_path / "weights.h5"
    page.write_text("<html>not found</html>")
    with pytest.raises(ValueError, match=rf"the weights file {page} is not an HDF5 file"):
        weights.load_weights_file(tiny_model(), page)

    full = write_legacy_h5(tiny_model(), tmp_path / "full.h5")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(full.read_bytes()[:-100])
    with pytest.raises(ValueError, match=rf"the weights file {cut} is a truncated or damaged HDF5 file"):
        weights.load_weights_file(tiny_model(), cut)


def test_layer_names_split_over_several_attributes_are_read(published, tmp_path):
    # Keras splits the layer_names attribute of large models (DenseNet201, ...) into chunks.
    path = tmp_path / "chunked.h5"
    path.write_bytes((published.source_dir / TOP_FILE).read_bytes())
    with h5py.File(path, "r+") as f:
        names = list(f.attrs.pop("layer_names"))
        f.attrs["layer_names0"], f.attrs["layer_names1"] = names[:2], names[2:]
    model = tiny_model()
    weights.load_weights_file(model, path)
    np.testing.assert_array_equal(model.get_weights()[-1], published.reference_weights[-1])
    with pytest.raises(ValueError, match="the file has 3 layers with weights"):
        weights.load_weights_file(tiny_model(include_top=False), path)


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
    weights.load_published_weights(model, "tiny", include_top=True)
    np.testing.assert_array_equal(model.get_weights()[0], published.reference_weights[0])


# The manifest override -------------------------------------------------------------------------


def test_missing_manifest_override_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(weights.MANIFEST_ENV, str(tmp_path / "nowhere.json"))
    with pytest.raises(ValueError, match=r"KERAS_NETS_MANIFEST=.*nowhere\.json: No such file"):
        weights.fetch("xception")


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
    monkeypatch.setenv(weights.MANIFEST_ENV, str(path))
    with pytest.raises(ValueError, match=rf"{path} is not a valid weights manifest.*{problem}"):
        weights.manifest()


def test_manifest_override_is_reread_when_it_changes(published, monkeypatch):
    path = published.use_manifest()
    assert list(weights.manifest()) == ["tiny"]
    manifest = json.loads(path.read_text())
    manifest["models"]["tiny2"] = manifest["models"]["tiny"]
    path.write_text(json.dumps(manifest, indent=1))
    assert list(weights.manifest()) == ["tiny", "tiny2"]


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
    assert cache_contents(keras_home) == [name]
    for ours, theirs in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
