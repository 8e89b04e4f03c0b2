"""`keras-nets predict`: any photo in, a top-k table or JSON lines out, bad files skipped."""

import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from generated_data import (
    SMALL_MODEL,
    SMALL_RANDOM_MODEL_OPTIONS,
    random_rgb,
    registered_tiny_network,
    smooth_rgb,
    write_broken_images,
    write_images_of_every_mode,
)
from informative_weights import assert_informative, informative_weights
from PIL import Image

import keras_nets
from keras_nets.cli import main
from keras_nets.image_files import ImageError, load_rgb
from keras_nets.imagenet import class_index
from keras_nets.preprocessing import eval_transform

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too

TABLE_ROW = re.compile(r"^\s+(\d+)\. (\S+)\s+(n\d{8})\s+(\d+\.\d\d)%$")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A 1000-class MobileNetV2 weights file standing in for the published ImageNet one."""
    folder = tmp_path_factory.mktemp("weights")
    return informative_weights(folder / "mobilenet_v2.weights.h5", SMALL_MODEL)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images_of_every_mode(tmp_path_factory.mktemp("images"))


def predict(capsys, *argv):
    status = main(["predict", "--model", SMALL_MODEL, *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def json_records(out):
    return [json.loads(line) for line in out.splitlines()]


def score_vectors(out):
    """The 1000 ImageNet scores of each JSON record, in class-index order."""
    index = {wnid: i for i, (wnid, _) in class_index().items()}
    vectors = []
    for record in json_records(out):
        vector = np.zeros(1000)
        for p in record["predictions"]:
            vector[index[p["wnid"]]] = p["score"]
        vectors.append(vector)
    return np.array(vectors)


# --- reading images -----------------------------------------------------------------------------


def test_every_image_mode_is_read_as_8_bit_rgb(images):
    for description, path in images.items():
        pixels = load_rgb(path, size=(32, 40))
        assert pixels.shape == (32, 40, 3) and pixels.dtype == np.uint8, description


def the_same_picture_as_rgb(description):
    """(what load_rgb must return for `description`'s file, mean absolute tolerance)."""
    original = smooth_rgb()  # the picture write_images_of_every_mode saved in every mode
    image = Image.fromarray(original)
    sixteen_bit = np.random.default_rng(1).integers(0, 65536, (48, 64))
    grey = np.rint(sixteen_bit / 257.0).astype("uint8")
    return {
        "rgb": (original, 4.0),  # JPEG
        "grayscale": (np.asarray(image.convert("L").convert("RGB")), 0.0),
        "rgba": (original, 0.0),
        "palette": (np.asarray(image.convert("P").convert("RGB")), 0.0),
        "cmyk": (original, 4.0),  # JPEG
        "16-bit": (np.stack([grey] * 3, axis=-1), 0.0),
        "exif-rotated": (np.rot90(original, k=-1), 4.0),  # orientation 6: turn clockwise
    }[description]


@pytest.mark.parametrize(
    "description", ["rgb", "grayscale", "rgba", "palette", "cmyk", "16-bit", "exif-rotated"]
)
def test_every_image_mode_gives_the_pixels_of_the_rgb_original(images, description):
    expected, tolerance = the_same_picture_as_rgb(description)
    pixels = load_rgb(images[description]).astype("float64")
    assert pixels.shape == expected.shape
    assert np.abs(pixels - expected).mean() <= tolerance, description


def test_grayscale_and_16_bit_become_equal_rgb_channels_at_full_range(tmp_path):
    path = tmp_path / "sixteen.png"
    Image.fromarray(np.array([[0, 257 * 128, 65535]], dtype="uint16")).save(path)
    pixels = load_rgb(path)
    assert pixels[0].tolist() == [[0, 0, 0], [128, 128, 128], [255, 255, 255]]


def test_transparent_pixels_are_put_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype="uint8")  # black, fully transparent
    rgba[0, 0] = (255, 0, 0, 255)  # one opaque red pixel
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    pixels = load_rgb(tmp_path / "rgba.png")
    assert pixels[0, 0].tolist() == [255, 0, 0]
    assert pixels[1, 1].tolist() == [255, 255, 255]


def test_exif_orientation_is_honoured(images):
    with Image.open(images["rgb"]) as stored:
        assert stored.size == (64, 48)  # width, height as stored
    assert load_rgb(images["exif-rotated"]).shape == (64, 48, 3)  # displayed upright: portrait


def test_broken_files_raise_an_image_error_naming_the_file(tmp_path):
    for path in write_broken_images(tmp_path).values():
        with pytest.raises(ImageError, match=re.escape(str(path))):
            load_rgb(path)


# --- the command --------------------------------------------------------------------------------


def test_table_shows_the_top_classes_of_each_image(capsys, weights, images):
    status, out, err = predict(capsys, *images.values(), "--weights", weights, "--top", "3")
    assert status == 0, err
    blocks = out.strip().split("\n\n")
    assert [block.splitlines()[0] for block in blocks] == list(images.values())
    for block in blocks:
        rows = [TABLE_ROW.match(line) for line in block.splitlines()[1:]]
        assert all(rows) and [int(row[1]) for row in rows] == [1, 2, 3]
        scores = [float(row[4]) for row in rows]
        assert scores == sorted(scores, reverse=True)


def test_json_gives_one_object_per_image_with_wordnet_ids(capsys, weights, images):
    status, out, _ = predict(capsys, images["rgb"], images["cmyk"], "--weights", weights, "--json")
    assert status == 0
    records = json_records(out)
    assert [r["image"] for r in records] == [images["rgb"], images["cmyk"]]
    for record in records:
        predictions = record["predictions"]
        assert len(predictions) == 5
        assert all(re.fullmatch(r"n\d{8}", p["wnid"]) and p["label"] for p in predictions)
        scores = [p["score"] for p in predictions]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6


def test_a_directory_is_walked_in_batches_and_bad_files_are_skipped(capsys, tmp_path, weights):
    good = write_images_of_every_mode(tmp_path / "photos")
    broken = write_broken_images(tmp_path / "photos" / "broken")
    (tmp_path / "photos" / "notes.txt").write_text("not an image extension: not walked")
    status, out, err = predict(
        capsys, tmp_path / "photos", "--weights", weights, "--json", "--batch", "3"
    )
    assert status == 1  # some inputs could not be read
    assert sorted(r["image"] for r in json_records(out)) == sorted(good.values())
    for path in broken.values():
        assert f"{path}: not a readable image" in err
    assert "notes.txt" not in err + out


def test_a_directory_shows_a_progress_bar_on_a_terminal(capsys, monkeypatch, tmp_path, weights):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for i in range(3):
        Image.fromarray(random_rgb(seed=i)).save(tmp_path / f"{i}.png")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    status, out, _ = predict(capsys, tmp_path, "--weights", weights, "--batch", "2")
    assert status == 0
    assert "[" + "#" * 20 + "." * 10 + "] 2/3 images" in terminal.getvalue()
    assert "3/3 images" in terminal.getvalue()
    assert out.count(str(tmp_path)) == 3


def test_missing_inputs_and_weights_are_errors_without_traceback(capsys, tmp_path, weights, images):
    status, out, err = predict(capsys, tmp_path / "nope.jpg", images["rgb"], "--weights", weights)
    assert status == 1 and f"{tmp_path / 'nope.jpg'}: no such file or directory" in err
    assert images["rgb"] in out

    status, _, err = predict(capsys, images["rgb"], "--weights", tmp_path / "missing.h5")
    assert status == 2 and "missing.h5" in err

    status, _, err = predict(
        capsys, images["rgb"], "--weights", tmp_path / "missing" / "model.keras"
    )
    assert status == 2 and "no such model file" in err


def test_runs_as_a_module_with_bad_input_and_no_traceback(tmp_path, weights, images):
    broken = write_broken_images(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_nets",
            "predict",
            images["grayscale"],
            broken["truncated"],
            "--model",
            SMALL_MODEL,
            "--weights",
            weights,
            "--top",
            "1",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 1
    assert result.stdout.startswith(images["grayscale"])
    assert f"{broken['truncated']}: not a readable image" in result.stderr
    assert "Traceback" not in result.stderr


def test_random_weights_alpha_and_size_as_train_takes_them(capsys, images):
    status, out, err = predict(
        capsys, images["rgb"], *SMALL_RANDOM_MODEL_OPTIONS, "--json", "--top", "1000"
    )
    assert status == 0, err
    scores = score_vectors(out)[0]
    assert scores.shape == (1000,) and abs(scores.sum() - 1) < 1e-3  # a random 1000-class model


def test_fast_predicts_the_same_probabilities(capsys, weights, images):
    pytest.importorskip("keras_nets.inference")
    argv = (images["rgb"], images["16-bit"], "--weights", weights, "--json", "--top", "1000")
    _, plain, _ = predict(capsys, *argv)
    status, fast, err = predict(capsys, *argv, "--fast")
    assert status == 0, err
    # The conversion takes seconds before the first answer: one line says so while it runs.
    assert (
        err.count(
            "keras-nets predict: --fast: loading the model and converting it for the fast path"
        )
        == 1
    )
    expected = score_vectors(plain)
    assert_informative(expected, "predict's scores")
    np.testing.assert_allclose(score_vectors(fast), expected, atol=1e-4)


# One model per preprocessing mode, each with informative weights at its own default size.
MODELS_BY_PREPROCESSING = {"tf": "mobilenet_v2", "caffe": "resnet50", "torch": "shufflenet_v2"}


@pytest.mark.parametrize("mode", list(MODELS_BY_PREPROCESSING))
def test_scores_are_the_model_on_its_own_preprocessing(capsys, tmp_path, images, mode):
    name = MODELS_BY_PREPROCESSING[mode]
    config = keras_nets.get_config(name)
    assert config.preprocessing == mode
    weights = informative_weights(tmp_path / f"{name}.weights.h5", name)
    paths = [images["rgb"], images["16-bit"]]  # two different pictures
    status = main(
        ["predict", "--model", name, *paths, "--weights", weights, "--json", "--top", "1000"]
    )
    out, err = capsys.readouterr()
    assert status == 0, err

    model = config.build(weights=weights)
    # predict's pipeline is the model's evaluation pipeline (tested in test_eval_transform.py)
    pixels = np.stack([eval_transform(name)(load_rgb(path)) for path in paths])
    expected = model.predict(config.preprocess_input(pixels), verbose=0)
    assert_informative(expected, f"{name} predictions")
    np.testing.assert_allclose(score_vectors(out), expected, atol=1e-6)


@pytest.fixture
def tiny_net():
    """A network registered from inside the test, as a user's own module would; nothing else edited."""
    yield from registered_tiny_network("tiny_net_predict", preprocessing="caffe", filters=8)


def test_a_model_registered_from_a_test_works_with_predict_model(
    capsys, tmp_path, tiny_net, images
):
    model = tiny_net()
    weights = tmp_path / "tiny.weights.h5"
    model.save_weights(weights)
    paths = [images["rgb"], images["16-bit"]]
    status = main(
        [
            "predict",
            "--model",
            "tiny_net_predict",
            *paths,
            "--weights",
            str(weights),
            "--json",
            "--top",
            "1000",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    pixels = np.stack([eval_transform("tiny_net_predict")(load_rgb(path)) for path in paths])
    expected = model.predict(
        keras_nets.get_config("tiny_net_predict").preprocess_input(pixels), verbose=0
    )
    np.testing.assert_allclose(score_vectors(out), expected, atol=1e-6)
