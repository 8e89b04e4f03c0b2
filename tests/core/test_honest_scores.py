"""Scores are counted honestly everywhere: NaN is an error, a tie counts against the true class.

A model that outputs NaN, or the same score for every class (a uniform softmax), must not read
as a good model: evaluate used to count an image correct when no class scored *strictly* higher
than its own, which made both 100 % top-1, and explain drew a heatmap for an arbitrary class.
"""

import json

import keras
import numpy as np
import pytest
from generated_data import SMALL_KWARGS, SMALL_MODEL, SMALL_SIZE, random_rgb
from PIL import Image

import keras_nets
from keras_nets import finetune, scores
from keras_nets.cli import main
from keras_nets.imagenet import decode_predictions
from keras_nets.prediction import Classifier
from keras_nets.preprocessing import trained_transform

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too

CLASS_NAMES = ["a", "b", "c"]
PER_CLASS = 2  # images in each class folder


# --- The rule itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row, truth, rank, predicted",
    [
        ([0.7, 0.2, 0.1], 0, 0, 0),  # strictly best: top-1
        ([0.2, 0.7, 0.1], 0, 1, 1),
        ([0.4, 0.4, 0.2], 0, 1, 1),  # tied with another: not top-1, and argmax says the other
        ([0.4, 0.4, 0.2], 1, 1, 0),
        ([1 / 3] * 3, 2, 2, 0),  # uniform: every other class ties, rank 2 of 3
        ([0.2, 0.4, 0.4], 0, 2, 1),
    ],
    ids=["best", "second", "tie-first", "tie-second", "uniform", "last-behind-a-tie"],
)
def test_a_tie_counts_against_the_true_class(row, truth, rank, predicted):
    got_rank = scores.ranks(np.array([row]), np.array([truth]))
    got_predicted = scores.predicted(np.array([row]), np.array([truth]))
    assert (int(got_rank[0]), int(got_predicted[0])) == (rank, predicted)
    assert (got_rank[0] == 0) == (got_predicted[0] == truth)  # the confusion matrix agrees


def test_nan_scores_are_one_error_naming_the_image():
    with pytest.raises(scores.NaNScoresError, match=r"scores for b\.jpg are NaN \(1 of 2\)"):
        scores.refuse_nan(np.array([[0.5, 0.5], [np.nan, 1.0]]), ["a.jpg", "b.jpg"])
    with pytest.raises(ValueError, match=r"preds row 0 has NaN scores"):
        decode_predictions(np.full((1, 1000), np.nan))


# --- keras_nets.evaluate on degenerate models ----------------------------------------------------


def constant_model(outputs):
    """An 8x8 model whose class scores are `outputs` (one per class) for every image."""
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(len(outputs))
    model = keras.Model(inputs, dense(pooled))
    dense.set_weights([np.zeros((3, len(outputs)), "float32"), np.asarray(outputs, "float32")])
    return model


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """DATA/<class>/*.png: PER_CLASS photos in each of CLASS_NAMES."""
    root = tmp_path_factory.mktemp("labelled")
    for c, name in enumerate(CLASS_NAMES):
        (root / name).mkdir()
        for i in range(PER_CLASS):
            Image.fromarray(random_rgb(12, 10, seed=10 * c + i)).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize(
    "outputs, top1",
    [
        ([1 / 3] * 3, 0.0),  # a uniform softmax: every image tied with the two other classes
        ([0.0, 0.0, 0.0], 0.0),  # constant logits
        ([0.5, 0.5, 0.0], 0.0),  # a and b tie: neither is top-1, and c is last
        ([0.6, 0.3, 0.1], 1 / 3),  # a constant favourite: its own images only
    ],
    ids=["uniform-softmax", "constant-logits", "two-tied", "constant-favourite"],
)
def test_degenerate_models_score_what_they_are_worth(labelled, outputs, top1):
    classifier = Classifier(
        constant_model(outputs), trained_transform(8), None, class_names=CLASS_NAMES
    )
    result = keras_nets.evaluate(data_dir=labelled, classifier=classifier, batch=4)
    assert result.top1 == pytest.approx(top1)
    assert result.images == PER_CLASS * len(CLASS_NAMES)
    diagonal = np.trace(np.array(result.confusion)[:, :-1])
    assert diagonal == round(top1 * result.images)  # the confusion matrix agrees with top-1


def test_a_model_with_nan_outputs_is_refused_by_evaluate(labelled):
    classifier = Classifier(
        constant_model([np.nan, 0.0, 0.0]), trained_transform(8), None, class_names=CLASS_NAMES
    )
    with pytest.raises(scores.NaNScoresError, match=r"scores for .*0\.png are NaN"):
        keras_nets.evaluate(data_dir=labelled, classifier=classifier)


# --- The commands, on a classifier saved as `keras-nets train` saves it ---------------------------


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory):
    """model.keras (3 classes, MobileNetV2 0.35 at 96 px) whose classifier's bias is NaN."""
    run = tmp_path_factory.mktemp("nan_run")
    model = finetune.build_classifier(
        SMALL_MODEL, classes=3, image_size=SMALL_SIZE, weights=None, **SMALL_KWARGS
    )
    head = model.get_layer("predictions")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, np.full_like(bias, np.nan)])
    model.save(run / "model.keras")
    (run / finetune.CLASS_NAMES_FILE).write_text(json.dumps(CLASS_NAMES))
    return run / "model.keras"


def command(capsys, *argv):
    status = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("name", ["evaluate", "explain"])
def test_the_commands_refuse_a_nan_model_in_one_line(capsys, tmp_path, labelled, nan_run, name):
    out_dir = tmp_path / "cams"
    argv = {
        "evaluate": ["evaluate", labelled, "--weights", nan_run],
        "explain": ["explain", labelled / "a" / "0.png", "--weights", nan_run, "--output", out_dir],
    }[name]
    status, out, err = command(capsys, *argv)
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"keras-nets {name}: error: the model's scores for ")
    assert "are NaN" in err and "top-1" not in out
    assert not out_dir.exists() or list(out_dir.iterdir()) == []  # no heatmap drawn


def test_grad_cam_refuses_nan_scores(nan_run):
    from keras_nets.explain import grad_cam

    model, _ = finetune.load_classifier(nan_run)
    images = random_rgb(SMALL_SIZE, SMALL_SIZE)[None].astype("float32")
    with pytest.raises(scores.NaNScoresError, match="scores for image 0 are NaN"):
        grad_cam(model, images)
