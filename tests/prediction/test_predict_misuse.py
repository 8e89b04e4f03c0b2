"""`keras-nets predict` under misuse: nothing hangs, no traceback, the other images still predicted.

Each row is a case: what the user gives, the exit status, and the one line that names the problem.
The model is a small classifier saved the way `keras-nets train` saves one (cheap to load).
"""

import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from generated_data import SMALL_KWARGS, SMALL_MODEL, SMALL_SIZE, smooth_rgb
from PIL import Image

from keras_nets import finetune, image_files
from keras_nets.cli import main
from keras_nets.prediction import Classifier


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(smooth_rgb()).save(path)
    return path


@pytest.fixture(autouse=True)
def nothing_hangs():
    """A test that blocks (e.g. on a FIFO) fails after 60 s instead of hanging the suite."""

    def fail(*_):
        raise TimeoutError("blocked for 60 s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def predict(capsys, *argv):
    status = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def predicted_images(out):
    return [json.loads(line)["image"] for line in out.splitlines()]


# --- special files: reported and skipped, never opened -------------------------------------------


def make_fifo(path):
    os.mkfifo(path)
    return path


def make_socket(path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    return path


@pytest.mark.parametrize(
    "make, kind",
    [(make_fifo, "a FIFO"), (make_socket, "a socket")],
    ids=["fifo", "socket"],
)
@pytest.mark.parametrize("given", ["by name", "met in a folder"])
def test_special_files_are_reported_and_skipped(
    capsys, loaded_once, tmp_path, trained_model, photo, make, kind, given
):
    folder = tmp_path / "photos"
    folder.mkdir()
    special = make(folder / "special.jpg")
    inputs = [special, photo] if given == "by name" else [folder, photo]
    status, out, err = predict(capsys, *inputs, "--weights", trained_model, "--json")
    assert status == 1
    assert f"{special}: not a regular file ({kind}); not opened; skipped" in err
    assert predicted_images(out) == [str(photo)]
    assert "Traceback" not in err


def test_a_device_is_not_opened(capsys, loaded_once, trained_model, photo):
    status, out, err = predict(capsys, "/dev/zero", photo, "--weights", trained_model)
    assert status == 1 and "/dev/zero: not a regular file (a character device)" in err
    assert str(photo) in out


# --- images whose resize would not fit in memory: one line each, the folder goes on ---------------


def write_png(path, width, height):
    Image.new("L", (width, height), 128).save(path, optimize=True)
    return path


ABSURD_IMAGES = {  # width, height, in the line: the resize that was not attempted
    # 242 bytes: the shorter side to 256 was 256x10240000, a MemoryError traceback
    "1x40000": (1, 40000, "1x40000 pixels: its shorter side resized to 110 would make 110x4400000"),
    "40000x1": (40000, 1, "40000x1 pixels: its shorter side resized to 110 would make 4400000x110"),
}


@pytest.mark.parametrize("case", list(ABSURD_IMAGES))
def test_an_absurd_aspect_ratio_is_one_line_and_the_folder_goes_on(
    capsys, monkeypatch, tmp_path, trained_model, photo, case
):
    # The pipeline of an ImageNet model: shorter side to 96 / 0.875 = 110, then the central crop.
    cropping = Classifier.load(None, str(trained_model), crop_pct=0.875)
    monkeypatch.setattr(Classifier, "load", classmethod(lambda cls, *args, **kwargs: cropping))
    width, height, message = ABSURD_IMAGES[case]
    folder = tmp_path / "photos"
    folder.mkdir()
    absurd = write_png(folder / "a_strip.png", width, height)
    panorama = write_png(folder / "b_panorama.png", 4000, 300)  # 13:1, taken
    status, out, err = predict(capsys, folder, photo, "--weights", trained_model, "--json")
    assert status == 1
    assert f"{absurd}: {message}" in err and err.count("a_strip.png") == 1
    assert predicted_images(out) == [str(panorama), str(photo)]
    assert "Traceback" not in err


# --- models and labels that are not what predict needs: one line naming the file -----------------


def write_notop_model(folder):
    base = finetune.base_model_of(
        finetune.build_classifier(
            SMALL_MODEL, 2, image_size=SMALL_SIZE, weights=None, **SMALL_KWARGS
        )
    )
    base.save(folder / "model.keras")


MODEL_CASES = {
    "corrupt model": (
        lambda f: (f / "model.keras").write_text("not a zip"),
        "model.keras: not a valid Keras model file",
    ),
    "truncated model": (
        lambda f: (f / "model.keras").write_bytes(b"PK\x03\x04" + b"\0" * 40),
        "model.keras: not a valid Keras model file",
    ),
    "invalid class_names.json": (
        lambda f: (f / "class_names.json").write_text("{blue, red"),
        "class_names.json: not a readable JSON list of class names",
    ),
    "class_names.json not a list": (
        lambda f: (f / "class_names.json").write_text('{"0": "blue"}'),
        "class_names.json: expected a JSON list of class names",
    ),
    "no class_names.json": (
        lambda f: (f / "class_names.json").unlink(),
        "model.keras: no class_names.json beside it",
    ),
    "a model without its top": (
        write_notop_model,
        "not a vector of class probabilities (a model without its top?)",
    ),
    "labels of another run": (
        lambda f: (f / "class_names.json").write_text('["a", "b", "c"]'),
        "class_names.json lists 3 classes but",
    ),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_a_model_predict_cannot_use_is_one_line_naming_the_file(
    capsys, tmp_path, trained_run, photo, case
):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("model.keras", "class_names.json"):
        (folder / name).write_bytes((trained_run / name).read_bytes())
    change, message = MODEL_CASES[case]
    change(folder)
    status, out, err = predict(capsys, photo, "--weights", folder / "model.keras")
    assert status == 2 and out == ""
    assert err.startswith("keras-nets predict: error: ") and err.count("\n") == 1, err
    assert message in err


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory, trained_run, trained_model):
    """A model.keras whose scores are all NaN (its classifier's bias is NaN)."""
    folder = tmp_path_factory.mktemp("nan_run")
    model = Classifier.load(None, str(trained_model)).model
    arrays = model.get_weights()
    arrays[-1] = arrays[-1] * float("nan")
    model.set_weights(arrays)
    model.save(folder / "model.keras")
    (folder / "class_names.json").write_bytes((trained_run / "class_names.json").read_bytes())
    return folder / "model.keras"


@pytest.mark.parametrize("output", ["table", "--json", "--output"])
def test_a_model_that_scores_nan_is_one_line(capsys, tmp_path, nan_model, photo, output):
    """Was a ValueError traceback from decoding; --output leaves no results file behind."""
    flags = {"table": [], "--json": ["--json"], "--output": ["--output", tmp_path / "r.jsonl"]}
    status, out, err = predict(capsys, photo, "--weights", nan_model, *flags[output])
    assert status == 2 and out == ""
    assert err == (
        f"keras-nets predict: error: --weights {nan_model}: the model scored 1 of 1 images NaN "
        "(not a number): its weights are broken; NaN cannot be ranked\n"
    )
    assert not (tmp_path / "r.jsonl").exists()


# --- file names the terminal cannot encode ------------------------------------------------------


def test_a_file_name_the_terminal_cannot_encode_is_escaped_and_the_rest_printed(
    monkeypatch, loaded_once, tmp_path, trained_model, photo
):
    odd = os.fsdecode(b"caf\xe9-\xff.png")  # Latin-1 bytes: surrogate escapes in a UTF-8 locale
    Image.fromarray(smooth_rgb()).save(tmp_path / odd)
    terminal = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # errors="strict", as ttys are
    monkeypatch.setattr(sys, "stdout", terminal)
    status = main(["predict", str(tmp_path), "--weights", str(trained_model)])
    terminal.flush()
    printed = terminal.buffer.getvalue().decode("utf-8")
    assert status == 0
    assert "caf\\udce9-\\udcff.png" in printed  # escaped, not a UnicodeEncodeError
    assert str(photo) in printed  # the next image's table still printed


# --- URLs: downloaded into memory with a size limit ---------------------------------------------


@pytest.fixture(scope="module")
def image_server():
    """http://127.0.0.1:PORT/ serving /photo.jpg, /big.jpg (no Content-Length) and 404s."""
    buffer = io.BytesIO()
    Image.fromarray(smooth_rgb()).save(buffer, "JPEG")
    photo = buffer.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/photo.jpg":
                self.send_response(200)
                self.send_header("Content-Length", str(len(photo)))
                self.end_headers()
                self.wfile.write(photo)
            elif self.path == "/unannounced.jpg":  # size only known by reading it
                self.send_response(200)
                self.end_headers()
                self.wfile.write(photo)
            else:
                self.send_error(404)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


URL_CASES = {
    "an image": ("/photo.jpg", None, 0, None),
    "not found": ("/missing.jpg", None, 1, "/missing.jpg: HTTP error 404"),
    "larger than the limit": ("/photo.jpg", 100, 1, "/photo.jpg: larger than 100 bytes"),
    "larger than the limit, unannounced": (
        "/unannounced.jpg",
        100,
        1,
        "/unannounced.jpg: larger than 100 bytes",
    ),
}


@pytest.mark.parametrize("case", list(URL_CASES))
def test_urls_are_downloaded_with_a_size_limit(
    capsys, monkeypatch, loaded_once, image_server, trained_model, photo, case
):
    path, limit, expected_status, message = URL_CASES[case]
    if limit is not None:
        monkeypatch.setattr(image_files, "MAX_DOWNLOAD_BYTES", limit)
    url = image_server + path
    status, out, err = predict(capsys, url, photo, "--weights", trained_model, "--json")
    assert status == expected_status, err
    if message is None:
        assert predicted_images(out) == [url, str(photo)]
    else:
        assert message in err and predicted_images(out) == [str(photo)]
    assert "Traceback" not in err


def test_an_unreachable_url_is_one_line(capsys, loaded_once, trained_model, photo):
    url = "http://127.0.0.1:9/photo.jpg"  # the discard port: nothing listens
    status, out, err = predict(capsys, url, photo, "--weights", trained_model)
    assert status == 1 and f"{url}: cannot be downloaded" in err
    assert str(photo) in out


# --- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--top", "0"], "argument --top: '0': expected a positive integer"),
        (["--batch", "nan"], "argument --batch: 'nan': expected a positive integer"),
    ],
)
def test_bad_arguments_are_usage_errors(capsys, photo, argv, message):
    with pytest.raises(SystemExit) as exit:
        main(["predict", str(photo), *argv])
    assert exit.value.code == 2 and message in capsys.readouterr().err


BACKEND_CASES = {  # KERAS_BACKEND, the package hidden from the child, the line
    "jax, not installed": ("jax", "jax", "KERAS_BACKEND=jax: the jax package is not installed"),
    "torch, not installed": (
        "torch",
        "torch",
        "KERAS_BACKEND=torch: the torch package is not installed",
    ),
    "a name Keras does not know": (
        "nonsense",
        None,
        "KERAS_BACKEND=nonsense: expected one of tensorflow, jax, torch",
    ),
}


@pytest.mark.parametrize("case", list(BACKEND_CASES))
def test_a_backend_keras_cannot_import_is_one_line(photo, case):
    """In a child process, with the backend's package hidden (None in sys.modules: its import
    fails as if it were not installed); was a ModuleNotFoundError traceback from inside Keras."""
    backend, hidden, message = BACKEND_CASES[case]
    code = (
        f"import sys; sys.modules[{hidden!r}] = None\n" if hidden else ""
    ) + f"from keras_nets.cli import main; sys.exit(main(['predict', {str(photo)!r}]))"
    child = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code],
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 2, child.stderr
    assert child.stderr.startswith(f"keras-nets predict: error: {message}"), child.stderr
    assert child.stderr.count("\n") == 1


def test_keyboard_interrupt_exits_130_with_one_line(capsys, monkeypatch, photo):
    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr("keras_nets.prediction.Classifier.load", interrupted)
    assert main(["predict", str(photo)]) == 130
    assert capsys.readouterr().err == "interrupted\n"
