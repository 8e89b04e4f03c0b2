"""A local weights server for the tests: a tiny model's "published" weights files, served by a
real HTTP server on 127.0.0.1 (http.server in a thread), listed in a test manifest that
KERAS_NETS_MANIFEST points to. conftest.py makes the fixtures `published_files` and `published`
available to every test.
"""

import hashlib
import http.server
import json
import os
import socket
import ssl
import threading

import keras
import pytest
from keras import layers
from published_layout import randomize_weights, write_legacy_h5

from keras_nets import pretrained

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
    /together/NAME    holds each request until two have arrived, then sends the file in pieces;
    /redirect/NAME    answers 302 to `redirect_to` + /files/NAME (another server, say);
    /stall/NAME       announces the full Content-Length, sends 1,000 bytes, then nothing more;
    /silent/NAME      accepts the connection and never answers;
    /endless/NAME     sends zeros with no Content-Length until the client hangs up;
    /bloated/NAME     announces 300 MB and sends zeros until the client hangs up.

    `certificate` (a `trustme` LeafCert) serves https instead of http.
    """

    def __init__(self, directory, certificate=None, redirect_to=None):
        self.directory = directory
        self.requests = []
        self.barrier = threading.Barrier(2, timeout=120)
        self.released = threading.Event()  # ends the stalled and silent answers
        self.sent = {}  # bytes sent by the endless and bloated answers, by path
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                kind, _, name = self.path.strip("/").partition("/")
                path = os.path.join(server.directory, name)
                if kind == "page":
                    return self.reply(b"<!DOCTYPE html><html>Sign in to the network</html>")
                if kind == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"{redirect_to}/files/{name}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if kind == "silent":
                    server.released.wait(120)
                    return
                if kind in ("endless", "bloated"):
                    return self.flood(300_000_000 if kind == "bloated" else None)
                if not os.path.isfile(path):
                    return self.send_error(404)
                body = open(path, "rb").read()
                if kind == "files":
                    self.reply(body)
                elif kind == "truncated":
                    self.reply(body[: len(body) // 2], length=len(body))
                elif kind == "unsized":
                    self.reply(body[: len(body) // 2], length=None)
                elif kind == "stall":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:1000])
                    self.wfile.flush()
                    server.released.wait(120)
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

            def flood(self, announced):
                self.send_response(200)
                if announced is not None:
                    self.send_header("Content-Length", str(announced))
                self.end_headers()
                server.sent[self.path] = 0
                try:
                    while not server.released.is_set():
                        self.wfile.write(bytes(1 << 16))
                        server.sent[self.path] += 1 << 16
                except OSError:  # the client hung up
                    pass
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            certificate.configure_cert(context)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        scheme = "http" if certificate is None else "https"
        self.base = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, kind, name):
        return f"{self.base}/{kind}/{name}"

    def stop(self):
        self.released.set()
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

    def trust_http(self):
        """Lets files without a published md5 come from this plain-http server (opt-in)."""
        self.monkeypatch.setenv(pretrained.ALLOW_HTTP_ENV, "1")

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
        self.monkeypatch.setenv(pretrained.MANIFEST_ENV, str(path))
        return path

    def entry(self, name, kind="files", urls=None, md5="", **more):
        """A manifest entry for `name` served at /KIND/ (or at `urls`); `more`: max_bytes, ..."""
        return {
            "file": name,
            "urls": urls if urls is not None else [self.server.url(kind, name)],
            "md5": self.md5(name) if md5 == "" else md5,
            **more,
        }


@pytest.fixture
def published(published_files, tmp_path, keras_home, monkeypatch):
    monkeypatch.delenv(pretrained.MIRROR_ENV, raising=False)
    monkeypatch.delenv(pretrained.ALLOW_HTTP_ENV, raising=False)
    tiny = PublishedTiny(published_files, tmp_path, monkeypatch)
    yield tiny
    tiny.server.stop()


def with_records(*names):
    """What the cache holds after `names` entered it: each file and its recorded sha256."""
    return sorted(n for name in names for n in (name, f".{name}.sha256"))


def cache_contents(keras_home):
    """Every entry of the cache directory, hidden download directories included."""
    models = keras_home / "models"
    return sorted(os.listdir(models)) if models.exists() else []
