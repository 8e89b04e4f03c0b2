"""`keras_nets.evaluate` and `keras-nets evaluate`: measured top-1 / top-5 on labelled folders.

Each test writes its pipeline out with PIL and numpy, scores every image with the model itself,
and files each image under a class of a chosen rank (first, third, eighth...) of its own scores:
the expected accuracies are then known exactly, and differ from them as soon as evaluate reads,
crops, resizes or scales an image otherwise (the ranks of a random model's classes move).
"""

import json
import os

import numpy as np
import pytest
from generated_data import SMALL_KWARGS, SMALL_MODEL, SMALL_SIZE, write_trained_run
from informative_weights import assert_informative, informative_model
from PIL import Image

import keras_nets
from keras_nets import finetune
from keras_nets.cli import main
from keras_nets.imagenet import class_index
from keras_nets.prediction import Classifier, imagenet_decoder
from keras_nets.preprocessing import eval_transform, trained_transform

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too

SIZES = [(130, 100), (100, 140), (96, 96), (200, 120), (110, 150), (160, 98)]  # (width, height)
# The rank, in its own scores, of the class each image is filed under: 4 and 5 straddle top-5.
RANKS = [0, 2, 5, 0, 4, 30]


def photos(count, seed=0):
    """Photo-like pictures (tint, gradient, noise) of the SIZES, landscape and portrait."""
    rng = np.random.default_rng(seed)
    pictures = []
    for i in range(count):
        width, height = SIZES[i % len(SIZES)]
        y, x = np.mgrid[0:height, 0:width] / max(width, height)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * x + np.sin(angle) * y)[..., None] * rng.uniform(-255, 255, 3)
        pixels = (
            rng.uniform(0, 255, 3) + ramp + rng.normal(0, rng.uniform(5, 60), (height, width, 3))
        )
        pictures.append(Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")))
    return pictures


def centre_crop_pixels(image, size, crop_pct=0.875):
    """The ImageNet evaluation pipeline written out: shorter side to round(size / crop_pct),
    bicubic; the central size x size square."""
    width, height = image.size
    shorter = round(size / crop_pct)
    scale = shorter / min(width, height)
    image = image.resize((round(width * scale), round(height * scale)), Image.BICUBIC)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype="float32")


def expected_accuracy(ranks):
    ranks = np.asarray(ranks)
    return float(np.mean(ranks < 1)), float(np.mean(ranks < 5))


def file_by_rank(root, pictures, scores, class_name):
    """Saves picture i under the class of rank RANKS[i] in scores[i]; returns the ranks used."""
    for i, (picture, score) in enumerate(zip(pictures, scores)):
        rank = RANKS[i % len(RANKS)] % score.size
        folder = root / class_name(int(np.argsort(-score, kind="stable")[rank]))
        folder.mkdir(parents=True, exist_ok=True)
        picture.save(folder / f"{i}.png")
    return [RANKS[i % len(RANKS)] % scores.shape[1] for i in range(len(pictures))]


@pytest.fixture(scope="module")
def imagenet_model():
    """MobileNetV2 (alpha 0.35) at 96x96 with the 1000-class top, outputs varying with the input."""
    return informative_model(SMALL_MODEL, SMALL_SIZE, **SMALL_KWARGS)


@pytest.fixture(scope="module")
def imagenet_folder(imagenet_model, tmp_path_factory):
    """An ImageNet-layout folder (WordNet-id sub-folders) and the ranks its images were filed at."""
    root = tmp_path_factory.mktemp("imagenet") / "val"
    pictures = photos(12)
    pixels = np.stack([centre_crop_pixels(picture, SMALL_SIZE) for picture in pictures])
    scores = imagenet_model.predict(pixels / 127.5 - 1.0, verbose=0)  # mode "tf", written out
    assert_informative(scores, "MobileNetV2 scores")
    ranks = file_by_rank(root, pictures, scores, lambda i: class_index()[i][0])
    return root, ranks


def small_imagenet_classifier(model):
    return Classifier(model, eval_transform(SMALL_MODEL, size=SMALL_SIZE), imagenet_decoder)


def test_imagenet_layout_accuracy_is_the_one_computed_independently(
    imagenet_model, imagenet_folder
):
    root, ranks = imagenet_folder
    result = keras_nets.evaluate(
        data_dir=root, classifier=small_imagenet_classifier(imagenet_model), batch=5
    )
    top1, top5 = expected_accuracy(ranks)
    assert (result.top1, result.top5) == (top1, top5)
    assert 0 < top1 < top5 < 1  # the numbers can tell a wrong pipeline apart
    assert result.images == len(ranks) and result.failed == []
    assert result.pipeline["crop_pct"] == 0.875 and result.pipeline["interpolation"] == "bicubic"
    per_class_images = sum(entry["images"] for entry in result.per_class.values())
    assert per_class_images == len(ranks)
    assert sorted(result.per_class) == sorted(os.listdir(root)) == result.classes


def confusion_one_by_one(root, classifier, class_of_output):
    """The confusion matrix written out: each image scored alone; its row is its folder's place
    among the sorted folders, its column the place of the folder of its top class (or the last
    column, "other", for a class without a folder)."""
    folders = sorted(os.listdir(root))
    counts = np.zeros((len(folders), len(folders) + 1), dtype="int64")
    for row, folder in enumerate(folders):
        for name in sorted(os.listdir(root / folder)):
            score = classifier.scores([classifier.read(root / folder / name)])[0]
            predicted = class_of_output(int(np.argmax(score)))
            counts[row, folders.index(predicted) if predicted in folders else len(folders)] += 1
    return counts


def test_the_confusion_matrix_is_the_one_computed_image_by_image(imagenet_model, imagenet_folder):
    """Folders are WordNet ids of scattered ImageNet classes: a column is a folder's place in the
    sorted folders, not the model's output index."""
    root, _ = imagenet_folder
    classifier = small_imagenet_classifier(imagenet_model)
    expected = confusion_one_by_one(root, classifier, lambda i: class_index()[i][0])
    assert np.trace(expected) > 0 and expected[:, -1].sum() > 0  # both kinds of columns are used
    result = keras_nets.evaluate(data_dir=root, classifier=classifier, batch=5)
    assert np.array_equal(result.confusion, expected)
    # Each folder's own accuracy is its row's: images in the row, top-1 its diagonal share.
    for row, folder in enumerate(sorted(os.listdir(root))):
        images = int(expected[row].sum())
        assert result.per_class[folder]["images"] == images
        assert result.per_class[folder]["top1"] == expected[row, row] / images


def test_limit_takes_every_class_in_turn(imagenet_model, imagenet_folder):
    root, _ = imagenet_folder
    classifier = small_imagenet_classifier(imagenet_model)
    result = keras_nets.evaluate(data_dir=root, classifier=classifier, limit=len(os.listdir(root)))
    assert result.images == len(os.listdir(root))
    assert all(entry["images"] == 1 for entry in result.per_class.values())


def test_unreadable_files_are_reported_skipped_and_not_counted(
    imagenet_model, imagenet_folder, tmp_path
):
    root, ranks = imagenet_folder
    copy = tmp_path / "val"
    for folder in os.listdir(root):
        (copy / folder).mkdir(parents=True)
        for name in os.listdir(root / folder):
            (copy / folder / name).write_bytes((root / folder / name).read_bytes())
    broken = copy / sorted(os.listdir(copy))[0] / "broken.jpg"
    broken.write_text("not an image")
    os.mkfifo(copy / sorted(os.listdir(copy))[-1] / "fifo.png")  # never opened
    errors = []
    result = keras_nets.evaluate(
        data_dir=copy, classifier=small_imagenet_classifier(imagenet_model), on_error=errors.append
    )
    assert (result.top1, result.top5) == expected_accuracy(ranks)
    assert sorted(os.path.basename(path) for path, _ in result.failed) == ["broken.jpg", "fifo.png"]
    assert len(errors) == 2 and "not a regular file" in " ".join(map(str, errors))


@pytest.mark.parametrize("folder", ["n99999999", "train"])
def test_folders_that_name_no_class_are_reported_before_any_image_is_read(
    imagenet_model, imagenet_folder, tmp_path, monkeypatch, folder
):
    root, _ = imagenet_folder
    data = tmp_path / "data"
    (data / folder).mkdir(parents=True)
    (data / sorted(os.listdir(root))[0]).mkdir()
    monkeypatch.setattr(Classifier, "read", lambda *_: pytest.fail("an image was read"))
    with pytest.raises(
        ValueError, match=f"1 of its 2 folders are not ImageNet WordNet ids .*{folder}"
    ):
        keras_nets.evaluate(data_dir=data, classifier=small_imagenet_classifier(imagenet_model))


# --- A classifier trained by keras-nets, through the command line --------------------------------

CLASS_NAMES = ["cat", "dog", "fox"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """model.keras and class_names.json as `keras-nets train` writes them, and a class-folder
    dataset filed by the model's own ranks (its pipeline written out: whole image, bilinear)."""
    run = tmp_path_factory.mktemp("run")
    model = write_trained_run(run, CLASS_NAMES)
    pictures = photos(6, seed=1)
    pixels = np.stack(
        [
            np.asarray(p.resize((SMALL_SIZE, SMALL_SIZE), Image.BILINEAR), dtype="float32")
            for p in pictures
        ]
    )
    scores = model.predict(pixels, verbose=0)
    assert_informative(scores, "classifier scores")
    ranks = file_by_rank(run / "validation", pictures, scores, lambda i: CLASS_NAMES[i])
    return run, ranks


def evaluate_cli(capsys, *argv):
    status = main(["evaluate", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_trained_classifier_accuracy_json_and_confusion_matrix(capsys, trained_run, tmp_path):
    run, ranks = trained_run
    out_json = tmp_path / "eval.json"
    status, out, err = evaluate_cli(
        capsys, run / "validation", "--weights", run / "model.keras", "--json", out_json
    )
    assert status == 0, err
    top1, _ = expected_accuracy(ranks)
    assert 0 < top1 < 1
    record = json.loads(out_json.read_text())
    # Three classes: every image is among the five first, so top-5 is not a measurement.
    assert (record["top1"], record["top5"], record["images"]) == (top1, None, len(ranks))
    assert {figures["top5"] for figures in record["per_class"].values()} == {None}
    assert record["notes"] == [
        "top-5 not measured: the model has 3 classes, so every image is among the five first"
    ]
    assert f"top-1:  {top1:.2%}" in out and "images/s" in out
    assert "top-5:  n/a (see the note)" in out and "100.00 %" not in out
    assert record["confusion_columns"] == [*sorted(CLASS_NAMES), "other"]
    assert record["pipeline"]["crop_pct"] is None  # the whole image, as in training
    assert np.sum(record["confusion"]) == len(ranks)
    assert np.trace(np.array(record["confusion"])[:, :-1]) == round(top1 * len(ranks))
    assert (tmp_path / "eval_confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["eval.json", "eval_confusion.png"]  # no leftovers


def test_crop_pct_reaches_the_trained_models_pipeline(trained_run):
    """evaluate(crop_pct=0.5) crops the central half of each image before resizing, as
    trained_transform(size, crop_pct=0.5) does; the crop changes the answers here."""
    run, _ = trained_run
    model, _ = finetune.load_classifier(run / "model.keras")
    decoder = lambda probabilities, top: None  # noqa: E731 - scores only

    def confusion(crop_pct):
        classifier = Classifier(model, trained_transform(SMALL_SIZE, crop_pct=crop_pct), decoder)
        return confusion_one_by_one(run / "validation", classifier, CLASS_NAMES.__getitem__)

    expected = confusion(0.5)
    assert not np.array_equal(expected, confusion(None))
    result = keras_nets.evaluate(
        data_dir=run / "validation", weights=run / "model.keras", crop_pct=0.5
    )
    assert result.pipeline["crop_pct"] == 0.5
    assert np.array_equal(result.confusion, expected)


def test_an_existing_json_is_replaced_only_with_overwrite(capsys, trained_run, tmp_path):
    run, _ = trained_run
    out_json = tmp_path / "mine.json"
    out_json.write_text("my notes")
    argv = (run / "validation", "--weights", run / "model.keras", "--json", out_json)
    status, _, err = evaluate_cli(capsys, *argv)
    assert status == 2 and "exists" in err and "--overwrite" in err
    assert out_json.read_text() == "my notes"
    status, _, err = evaluate_cli(capsys, *argv, "--overwrite")
    assert status == 0, err
    assert json.loads(out_json.read_text())["images"] == 6


def test_a_dataset_with_other_classes_is_one_error_line(capsys, trained_run, tmp_path):
    run, _ = trained_run
    (tmp_path / "data" / "horse").mkdir(parents=True)
    status, _, err = evaluate_cli(capsys, tmp_path / "data", "--weights", run / "model.keras")
    assert status == 2
    assert err.strip() == (
        f"keras-nets evaluate: error: DATA {tmp_path / 'data'}: 1 of its 1 folders are not "
        "classes of the model's class_names.json: horse"
    )


def test_the_split_folder_itself_is_suggested(capsys, trained_run):
    run, _ = trained_run
    status, _, err = evaluate_cli(capsys, run, "--weights", run / "model.keras")
    assert status == 2 and "give the split folder itself" in err and "Traceback" not in err


def test_unreadable_images_make_the_exit_status_1(capsys, trained_run, tmp_path):
    run, ranks = trained_run
    data = tmp_path / "validation"
    for folder in os.listdir(run / "validation"):
        (data / folder).mkdir(parents=True)
        for name in os.listdir(run / "validation" / folder):
            (data / folder / name).write_bytes((run / "validation" / folder / name).read_bytes())
    (data / CLASS_NAMES[0] / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    status, out, err = evaluate_cli(capsys, data, "--weights", run / "model.keras")
    assert status == 1
    assert "cut.png: not a readable image" in err and "1 image(s) could not be read" in err
    assert f"images: {len(ranks)} (1 could not be read)" in out
