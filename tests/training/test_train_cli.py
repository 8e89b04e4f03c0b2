"""`keras-nets train`: folders of labelled images in, a trained model.keras (and friends) out."""

import contextlib
import io
import json
import math
import re
import shutil
import zipfile

import keras
import numpy as np
import pytest
from generated_data import (
    SMALL_MODEL,
    SMALL_SIZE,
    calibrated_base_weights,
    make_dataset,
    write_broken_images,
)
from PIL import Image

from keras_nets import finetune, training
from keras_nets.cli import build_parser, main
from keras_nets.commands.train import classifier_arguments

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too


def train_argv(data_dir, output, *extra, classes=2):
    """`keras-nets train` arguments for MobileNetV2 alpha 0.35 at 96 px, batches of 8."""
    small_model = ["--model", SMALL_MODEL, "--alpha", "0.35", "--size", str(SMALL_SIZE)]
    return [
        "train",
        str(data_dir),
        *small_model,
        "--classes",
        str(classes),
        "--batch",
        "8",
        "--output",
        str(output),
        *map(str, extra),
    ]


def train(capsys, data_dir, output, *extra, classes=2):
    status = main(train_argv(data_dir, output, *extra, classes=classes))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def base_weights(tmp_path_factory):
    return calibrated_base_weights(tmp_path_factory.mktemp("weights") / "base.weights.h5")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "colours")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, base_weights, dataset):
    """One two-class run of three epochs, shared by the tests that read its results; what it
    printed (to a pipe, not a terminal) is in ../stdout.txt."""
    output = tmp_path_factory.mktemp("run")
    extra = ("--epochs", "3", "--learning-rate", "0.003", "--weights", base_weights)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(train_argv(dataset, output, *extra))
    assert status == 0
    (output.parent / "stdout.txt").write_text(printed.getvalue())
    return output


def test_writes_the_model_class_names_history_and_best_checkpoint(trained):
    assert sorted(p.name for p in trained.iterdir()) == [
        "best.keras",
        "class_names.json",
        "history.json",
        "model.keras",
    ]
    assert json.loads((trained / "class_names.json").read_text()) == ["blue", "red"]
    history = json.loads((trained / "history.json").read_text())
    assert set(history) == {"accuracy", "loss", "val_accuracy", "val_loss"}
    assert all(len(values) == 3 for values in history.values())


def test_a_log_gets_one_plain_line_per_epoch_and_a_summary_line(trained):
    lines = (trained.parent / "stdout.txt").read_text().splitlines()
    metrics = r"accuracy [\d.]+, loss [\d.]+, val_accuracy [\d.]+, val_loss [\d.]+"
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 3
    for number, line in enumerate(epochs, start=1):
        assert re.fullmatch(rf"epoch {number}/3: {metrics} \(\d+ s\)", line), line
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", "".join(lines))  # no escape codes, \r, \b
    history = json.loads((trained / "history.json").read_text())
    best = int(np.argmin(history["val_loss"]))
    files = ", ".join(str(trained / name) for name in training.RUN_FILES)
    assert lines[-1] == (
        f"best epoch {best + 1}/3: val_accuracy {history['val_accuracy'][best]:.4f}, "
        f"val_loss {history['val_loss'][best]:.4f}; wrote {files}"
    )


def test_the_summary_of_a_run_without_a_finite_validation_loss_names_no_best_epoch():
    history = {"val_loss": [math.nan, math.inf], "val_accuracy": [0.5, 0.5]}
    assert training.summary(history, "run") == (
        "no epoch had a finite validation loss (no best.keras); wrote run/model.keras, "
        "run/history.json, run/class_names.json"
    )


def validation_loss(model_path, dataset):
    """The sparse categorical cross-entropy of a saved classifier on the validation split."""
    model = keras.saving.load_model(model_path, compile=False)
    paths, labels = training.split_files(dataset, "validation", ["blue", "red"])
    images = np.stack([training.read_for_training(path, SMALL_SIZE) for path in paths])
    predictions = model(images, training=False)
    losses = [keras.losses.sparse_categorical_crossentropy(np.array(labels), predictions)]
    return float(np.mean(np.concatenate([keras.ops.convert_to_numpy(x) for x in losses])))


def test_best_checkpoint_is_the_epoch_of_lowest_validation_loss(trained, dataset):
    history = json.loads((trained / "history.json").read_text())
    np.testing.assert_allclose(
        validation_loss(trained / "best.keras", dataset), min(history["val_loss"]), rtol=1e-4
    )


def test_best_checkpoint_keeps_the_best_epoch_not_the_last(tmp_path):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name="dense")])
    checkpoint = training.BestCheckpoint(tmp_path / "best.keras")
    checkpoint.set_model(model)
    for epoch, val_loss in enumerate([0.5, 0.3, 0.4, float("nan")]):
        model.get_layer("dense").set_weights([np.full((1, 1), epoch, "float32"), np.zeros(1)])
        checkpoint.on_epoch_end(epoch, {"val_loss": val_loss})
    saved = keras.saving.load_model(tmp_path / "best.keras")
    assert float(saved.get_layer("dense").kernel.numpy()[0, 0]) == 1  # the epoch of 0.3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras"]  # no partial file


def test_loss_goes_down(trained):
    history = json.loads((trained / "history.json").read_text())
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]


def test_base_stays_as_loaded_while_the_head_learns(trained, base_weights):
    model = keras.saving.load_model(trained / "model.keras")
    base = finetune.base_model_of(model)
    reference = keras.models.clone_model(base)
    reference.load_weights(base_weights)
    for expected, actual in zip(reference.weights, base.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(actual), keras.ops.convert_to_numpy(expected)
        )


def test_saved_model_reloads_and_predicts_class_names(capsys, trained, dataset):
    model = keras.saving.load_model(trained / "model.keras")
    assert model.output_shape == (None, 2)
    status = main(
        [
            "predict",
            str(dataset / "validation"),
            "--weights",
            str(trained / "model.keras"),
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 8
    for record in records:
        assert [p["wnid"] for p in record["predictions"]] == [None, None]
        assert {p["label"] for p in record["predictions"]} == {"blue", "red"}
    # Each label is the reloaded model's own best class, computed here without keras_nets: the
    # whole photo resized bilinearly (as training read it), straight into the model.
    photos = [
        Image.open(r["image"]).convert("RGB").resize((SMALL_SIZE,) * 2, Image.BILINEAR)
        for r in records
    ]
    scores = model.predict(np.stack([np.asarray(p, "float32") for p in photos]), verbose=0)
    class_names = json.loads((trained / "class_names.json").read_text())
    assert [r["predictions"][0]["label"] for r in records] == [
        class_names[i] for i in scores.argmax(axis=1)
    ]


def test_tclasses_continues_from_a_trained_model_replacing_only_the_classifier(
    capsys, tmp_path, trained
):
    data = make_dataset(tmp_path / "three", classes=("blue", "green", "red"), train=4, validation=2)
    status, _, err = train(
        capsys,
        data,
        tmp_path / "out",
        "--weights",
        trained / "model.keras",
        "--tclasses",
        "2",
        "--epochs",
        "1",
        classes=3,
    )
    assert status == 0, err
    before = keras.saving.load_model(trained / "model.keras")
    after = keras.saving.load_model(tmp_path / "out" / "model.keras")
    assert after.output_shape == (None, 3)
    assert json.loads((tmp_path / "out" / "class_names.json").read_text()) == [
        "blue",
        "green",
        "red",
    ]
    for old, new in zip(
        finetune.base_model_of(before).weights, finetune.base_model_of(after).weights
    ):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(old), keras.ops.convert_to_numpy(new)
        )


def test_tclasses_must_match_the_trained_model(capsys, tmp_path, trained, dataset):
    status, _, err = train(
        capsys, dataset, tmp_path / "out", "--weights", trained / "model.keras", "--tclasses", "5"
    )
    assert status == 2
    assert "--tclasses 5:" in err and "was trained on 2 classes" in err


def test_tclasses_needs_a_trained_model_file(capsys, tmp_path, dataset):
    status, _, err = train(capsys, dataset, tmp_path / "out", "--tclasses", "2")
    assert status == 2 and "--tclasses 2 continues from a trained classifier" in err


# --- a bad DATA_DIR is reported before anything is built or trained -----------------------------


def bad_dataset(tmp_path, change):
    data = make_dataset(tmp_path / "data", train=2, validation=1, size=8)
    change(data)
    return data


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: shutil.rmtree(d / "validation"),
            r"validation: missing; expected .*/train/<class>/\*",
        ),
        (lambda d: [shutil.rmtree(p) for p in (d / "train").iterdir()], r"train is empty"),
        (
            lambda d: (d / "train" / "green").mkdir(),
            r"train has 3 class folders \(blue, green, red\) but --classes is 2",
        ),
        (
            lambda d: (d / "validation" / "red").rename(d / "validation" / "rouge"),
            r"validation has class folders \['blue', 'rouge'\]",
        ),
        (
            lambda d: [p.unlink() for p in (d / "validation" / "red").iterdir()],
            r"validation/red has no images",
        ),
    ],
    ids=["missing split", "empty split", "class count", "different classes", "empty class"],
)
def test_dataset_errors_come_before_training(capsys, tmp_path, change, message):
    data = bad_dataset(tmp_path, change)
    status, out, err = train(capsys, data, tmp_path / "out", "--weights", "none")
    assert status == 2
    assert err.startswith("keras-nets train: error: ")
    assert re.search(message, err), err
    assert "Traceback" not in err and "epoch" not in out.lower()
    assert not (tmp_path / "out").exists()


def test_unreadable_images_are_listed_before_training(capsys, tmp_path):
    data = make_dataset(tmp_path / "data", train=2, validation=1, size=8)
    broken = write_broken_images(data / "train" / "red")
    status, out, err = train(capsys, data, tmp_path / "out", "--weights", "none")
    assert status == 2
    assert "2 image(s) cannot be decoded" in err
    for path in broken.values():
        assert path in err
    assert "epoch" not in out.lower() and not (tmp_path / "out").exists()


def test_missing_data_dir_and_weights_file(capsys, tmp_path, dataset):
    status, _, err = train(capsys, tmp_path / "nowhere", tmp_path / "out")
    assert status == 2 and "nowhere: no such directory" in err
    status, _, err = train(capsys, dataset, tmp_path / "out", "--weights", tmp_path / "base.h5")
    assert status == 2 and "base.h5: no such file" in err


def trainable_layers(argv):
    """{layer name: trainable} of the classifier `keras-nets train` builds for `argv`; the base's
    BatchNormalization layers are {name: trainable} apart."""
    args = build_parser().parse_args(argv)
    model = finetune.classifier_to_train(args.model, args.classes, **classifier_arguments(args))
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    batch_norms = {
        layer.name
        for layer in finetune.base_model_of(model).layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    return trainable - batch_norms, trainable & batch_norms, batch_norms


@pytest.mark.parametrize(
    "flag, base_trains", [("--freeze", False), ("--no-freeze", True), ("", False)]
)
def test_freeze_flag_decides_whether_a_trained_base_trains(
    tmp_path, base_weights, flag, base_trains
):
    argv = train_argv(tmp_path, tmp_path, "--weights", base_weights, *filter(None, [flag]))
    trainable, batch_norms_trainable, batch_norms = trainable_layers(argv)
    assert ("Conv1" in trainable) == base_trains
    assert "predictions" in trainable
    assert "bn_Conv1" in batch_norms and not batch_norms_trainable  # BatchNorm never trains


@pytest.mark.parametrize("flag", ["", "--no-freeze"])
def test_random_weights_train_the_whole_network_batch_norm_included(tmp_path, flag):
    argv = train_argv(tmp_path, tmp_path, "--weights", "none", *filter(None, [flag]))
    trainable, batch_norms_trainable, batch_norms = trainable_layers(argv)
    assert {"Conv1", "predictions"} <= trainable and batch_norms_trainable == batch_norms


@pytest.mark.parametrize(
    "argv, given",
    [
        (["--weights", "none"], "--weights none"),
        (["--model", "shufflenet_v2"], "shufflenet_v2 (no published weights)"),
    ],
)
def test_freeze_on_random_weights_is_refused_in_one_line(capsys, tmp_path, dataset, argv, given):
    status, out, err = train(capsys, dataset, tmp_path / "out", *argv, "--freeze")
    assert status == 2 and out == ""
    assert err == (
        f"keras-nets train: error: --freeze with {given}: a frozen base with random weights "
        "cannot learn; drop --freeze (the whole network then trains from scratch) or give "
        "trained --weights\n"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "model, weights", [("shufflenet_v2", None), ("alexnet", None), ("mobilenet_v2", "imagenet")]
)
def test_weights_default_to_imagenet_or_random_for_a_model_without_published_weights(
    tmp_path, model, weights
):
    args = build_parser().parse_args(train_argv(tmp_path, tmp_path, "--model", model))
    assert classifier_arguments(args)["weights"] == weights
    assert classifier_arguments(args)["freeze"] is None  # frozen if and only if weights are trained


def test_augment_transforms_the_training_images_only_never_the_saved_model(
    capsys, tmp_path, dataset, base_weights, monkeypatch
):
    made, augmentation_layers = [], training.augmentation_layers

    def recorded_augmentation(seed=None):
        made.append(augmentation_layers(seed))
        return made[-1]

    monkeypatch.setattr(training, "augmentation_layers", recorded_augmentation)
    status, _, err = train(
        capsys,
        dataset,
        tmp_path / "out",
        "--weights",
        base_weights,
        "--size",
        "32",
        "--epochs",
        "1",
        "--augment",
    )
    assert status == 0, err
    assert len(made) == 1 and all(layer.built for layer in made[0])  # the images went through
    assert [type(layer).__name__ for layer in made[0]] == [
        "RandomFlip",
        "RandomTranslation",
        "RandomZoom",
    ]
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    for name in ("model.keras", "best.keras"):
        with zipfile.ZipFile(tmp_path / "out" / name) as saved:
            assert "Random" not in saved.read("config.json").decode()
    model = keras.saving.load_model(tmp_path / "out" / "model.keras")
    first, second = (model.predict(images, verbose=0) for _ in range(2))
    np.testing.assert_array_equal(first, second)


# --- One decoding: training sees the pixels predict and evaluate will show the classifier ---------


def pixel_cases(folder):
    """{case: path}: the photos the TensorFlow decoding of image_dataset_from_directory read
    otherwise than predict (mean absolute difference at 96 px, measured on these files)."""
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:60, 0:80]
    picture = np.stack([x * 3, y * 4, (x + y) * 2], axis=-1).clip(0, 255).astype("uint8")
    rotated = Image.fromarray(picture)
    exif = rotated.getexif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display (76.7)
    rotated.save(folder / "exif_rotated.jpg", exif=exif)
    alpha = (x * 255 // 79).astype("uint8")[..., None]  # transparent on the left (76.7)
    Image.fromarray(np.concatenate([picture, alpha], axis=-1), "RGBA").save(folder / "rgba.png")
    texture = np.random.default_rng(0).integers(0, 256, (768, 1024, 3), dtype="uint8")
    Image.fromarray(texture).save(folder / "texture.png")  # resized with antialiasing (33.4)
    return {path.stem: path for path in sorted(folder.iterdir())}


def test_training_reads_images_as_predict_reads_them_for_the_classifier(tmp_path, monkeypatch):
    """What `model.fit` gets is, pixel for pixel, what `Classifier.read` gives the saved model
    at predict/evaluate time, for a photo with an EXIF orientation, a transparent PNG and a
    large textured photo."""
    from keras_nets.prediction import Classifier

    data = tmp_path / "data"
    cases = {}
    for split in training.SPLITS:
        cases = pixel_cases(data / split / "only")
        shutil.copytree(data / split / "only", data / split / "other")
    seen = {}

    class Seen(Exception):
        pass

    def spy_fit(model, train, validation_data, **kwargs):
        batch = (
            validation_data[0]
            if hasattr(validation_data, "__getitem__")
            else next(iter(validation_data))
        )
        seen["images"] = keras.ops.convert_to_numpy(batch[0])
        model.save(tmp_path / "model.keras")
        raise Seen

    monkeypatch.setattr(keras.Model, "fit", spy_fit)
    with pytest.raises(Seen):
        training.train_classifier(
            data,
            tmp_path / "out",
            base=SMALL_MODEL,
            classes=2,
            alpha=0.35,
            weights=None,
            image_size=32,
            batch_size=8,
            verbose=0,
        )
    (tmp_path / "class_names.json").write_text(json.dumps(["only", "other"]))
    classifier = Classifier.from_trained(tmp_path / "model.keras")
    for i, (case, path) in enumerate(cases.items()):  # the first class folder, in order
        np.testing.assert_array_equal(
            seen["images"][i],
            classifier.read(data / "validation" / "only" / path.name),
            err_msg=case,
        )
