"""`keras-nets explain`: one overlay PNG per image and class, named after both; predict's errors."""

import errno
import json
import os
import re

import pytest
from generated_data import (
    SMALL_KWARGS,
    SMALL_MODEL,
    SMALL_SIZE,
    imagenet_like_weights,
    random_rgb,
    write_broken_images,
)
from PIL import Image

from keras_nets import finetune
from keras_nets.cli import main
from keras_nets.commands.explain import class_of
from keras_nets.imagenet import class_index

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too

CLASS_NAMES = ["blue", "red", "green"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model.keras as `keras-nets train` saves it (3 classes, MobileNetV2 0.35 at 96 px)."""
    run = tmp_path_factory.mktemp("run")
    model = finetune.build_classifier(
        SMALL_MODEL, classes=3, image_size=SMALL_SIZE, weights=None, **SMALL_KWARGS
    )
    model.save(run / "model.keras")
    (run / finetune.CLASS_NAMES_FILE).write_text(json.dumps(CLASS_NAMES))
    return str(run / "model.keras")


@pytest.fixture(scope="module")
def imagenet_weights(tmp_path_factory):
    """A 1000-class MobileNetV2 weights file standing in for the published ImageNet one."""
    return imagenet_like_weights(tmp_path_factory.mktemp("weights") / "mobilenet_v2.weights.h5")


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(random_rgb(60, 80, seed=1)).save(folder / "cat.jpg")
    Image.fromarray(random_rgb(50, 40, seed=2)).save(folder / "dog.png")
    return folder


def explain(capsys, *argv):
    status = main(["explain", "--model", SMALL_MODEL, *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_one_overlay_per_image_and_class_at_the_photos_size(capsys, trained, photos, tmp_path):
    out_dir = tmp_path / "cams"
    status, out, err = explain(
        capsys, photos, "--weights", trained, "--top", "2", "--json", "--output", out_dir
    )
    assert status == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [os.path.basename(r["image"]) for r in records] == ["cat.jpg", "dog.png"]
    written = set()
    for record, size in zip(records, [(80, 60), (40, 50)]):
        stem = os.path.splitext(os.path.basename(record["image"]))[0]
        explanations = record["explanations"]
        assert len(explanations) == 2 and explanations[0]["score"] >= explanations[1]["score"]
        for e in explanations:
            assert e["label"] == CLASS_NAMES[e["index"]] and e["wnid"] is None
            assert e["heatmap"] == str(out_dir / f"{stem}_{e['label']}.png")
            with Image.open(e["heatmap"]) as picture:
                assert picture.size == size and picture.mode == "RGB"
            written.add(os.path.basename(e["heatmap"]))
    assert set(os.listdir(out_dir)) == written  # nothing else, no temporary files

    # The scores are the probabilities `keras-nets predict` gives.
    assert main(["predict", str(photos), "--weights", trained, "--top", "2", "--json"]) == 0
    predicted = [json.loads(line)["predictions"] for line in capsys.readouterr().out.splitlines()]
    assert [[(e["label"], round(e["score"], 5)) for e in r["explanations"]] for r in records] == [
        [(p["label"], round(p["score"], 5)) for p in image] for image in predicted
    ]


def test_a_class_by_wordnet_id_with_imagenet_labels(capsys, imagenet_weights, photos, tmp_path):
    status, out, err = explain(
        capsys,
        photos / "cat.jpg",
        "--weights",
        imagenet_weights,
        "--class",
        "n02504458",
        "--output",
        tmp_path / "cams",
    )
    assert status == 0, err
    assert "African_elephant" in out and "n02504458" in out
    assert os.listdir(tmp_path / "cams") == ["cat_African_elephant.png"]


IMAGENET_LABELS = list(class_index().values())


@pytest.mark.parametrize("chosen", ["n02504458", "African_elephant", "386"])
def test_class_by_wordnet_id_label_or_index(chosen):
    assert class_of(chosen, IMAGENET_LABELS) == 386


@pytest.mark.parametrize(
    "chosen, message",
    [
        ("crane", "--class crane: names classes 134, 517; pass the index"),
        ("1000", "--class 1000: expected a class index below 1000"),
        ("unicorn", "--class unicorn: not a class label, WordNet id or index of this model"),
    ],
)
def test_a_class_that_names_no_single_class_is_refused(chosen, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        class_of(chosen, IMAGENET_LABELS)


def test_a_bad_class_is_one_error_line_before_any_work(capsys, trained, photos, tmp_path):
    status, out, err = explain(
        capsys, photos, "--weights", trained, "--class", "purple", "--output", tmp_path / "cams"
    )
    assert (status, out) == (2, "")
    assert err == (
        "keras-nets explain: error: --class purple: not a class label, WordNet id or index of "
        "this model\n"
    )
    assert not (tmp_path / "cams").exists()


def test_a_file_already_there_is_kept_unless_overwrite(capsys, trained, photos, tmp_path):
    args = (photos / "cat.jpg", "--weights", trained, "--class", "red", "--output", tmp_path)
    mine = tmp_path / "cat_red.png"
    mine.write_bytes(b"my own file")
    status, _, err = explain(capsys, *args)
    assert status == 1 and f"{mine}: exists; not replaced (--overwrite replaces it)" in err
    assert mine.read_bytes() == b"my own file"
    assert explain(capsys, *args, "--overwrite")[0] == 0
    with Image.open(mine) as picture:
        assert picture.size == (80, 60)


def test_the_same_image_name_twice_gets_a_number(capsys, trained, photos, tmp_path):
    other = tmp_path / "more"
    other.mkdir()
    Image.fromarray(random_rgb(30, 30, seed=5)).save(other / "cat.jpg")
    status, _, err = explain(
        capsys,
        photos / "cat.jpg",
        other / "cat.jpg",
        "--weights",
        trained,
        "--class",
        "0",
        "--output",
        tmp_path / "cams",
    )
    assert status == 0, err
    assert sorted(os.listdir(tmp_path / "cams")) == ["cat_blue.png", "cat_blue_2.png"]


def test_unreadable_and_missing_inputs_are_skipped_as_predict_does(
    capsys, trained, photos, tmp_path
):
    broken = write_broken_images(tmp_path / "broken")
    status, out, err = explain(
        capsys,
        photos / "cat.jpg",
        broken["truncated"],
        tmp_path / "absent.jpg",
        "--weights",
        trained,
        "--output",
        tmp_path / "cams",
    )
    assert status == 1
    assert f"{tmp_path / 'absent.jpg'}: no such file or directory" in err
    assert f"{broken['truncated']}: not a readable image" in err
    assert "cat.jpg" in out and os.listdir(tmp_path / "cams") == [f"cat_{out.split()[1]}.png"]


def test_bad_model_weights_or_output_is_an_error_before_any_work(capsys, photos, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    cases = [
        (["--model", "nonet"], "--model nonet: expected one of: xception, "),
        (["--weights", str(tmp_path / "none.keras")], "none.keras"),
    ]
    for extra, message in cases:
        status, _, err = explain(capsys, photos, *extra, "--output", tmp_path / "cams")
        assert status == 2 and message in err and err.count("\n") == 1, err
    status, _, err = explain(capsys, photos, "--output", not_a_dir)
    assert (status, err) == (
        2,
        f"keras-nets explain: error: --output {not_a_dir}: not a directory\n",
    )
    assert not (tmp_path / "cams").exists()


# --- an --output that cannot take the pictures: one line, nothing partial left ------------------


def read_only(path, fmt):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))


def disk_full_mid_file(path, fmt):
    with open(path, "wb") as f:  # half a picture reaches the disk, then no space is left
        f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


OUTPUT_FAILURES = {  # how writing fails (None: it never starts), the line after --output's picture
    "read-only": (read_only, "cannot be written (Read-only file system)"),
    "disk full": (disk_full_mid_file, "cannot be written (No space left on device)"),
}


@pytest.mark.parametrize("case", list(OUTPUT_FAILURES))
def test_an_output_that_cannot_be_written_is_one_line_and_leaves_nothing(
    capsys, monkeypatch, trained, photos, tmp_path, case
):
    """As root (the tests), a read-only folder can be written: the PNG writer is made to fail
    as a read-only or full file system makes it fail. Was an OSError traceback."""
    save, message = OUTPUT_FAILURES[case]
    monkeypatch.setattr(Image.Image, "save", lambda self, path, format=None: save(path, format))
    out_dir = tmp_path / "new" / "cams"
    status, out, err = explain(capsys, photos, "--weights", trained, "--output", out_dir)
    assert status == 2 and out == ""
    assert re.fullmatch(
        rf"keras-nets explain: error: {re.escape(str(out_dir))}/cat_\w+\.png: "
        rf"{re.escape(message)}\n",
        err,
    ), err
    assert not (tmp_path / "new").exists()  # the folders it made, empty, are removed


def test_an_output_under_a_file_is_one_line_before_any_work(capsys, photos, tmp_path, monkeypatch):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    from keras_nets.prediction import Classifier

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before --output was checked")

    monkeypatch.setattr(Classifier, "load", no_model)
    status, out, err = explain(capsys, photos, "--weights", "none", "--output", a_file / "cams")
    assert (status, out) == (2, "")
    assert err == (
        f"keras-nets explain: error: --output {a_file / 'cams'}: cannot be created: "
        f"{a_file} is not a directory\n"
    )
    assert a_file.read_text() == "mine"
