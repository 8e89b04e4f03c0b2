"""A classifier trained by `keras-nets train` warm-starts from the compiled-model cache like a
registry model: the second fast predictor builds no Keras model and answers the same, with the
run's class names (keras_nets.prediction.cached)."""

import json

import numpy as np
import pytest
from informative_weights import random_images
from PIL import Image
from required_runtimes import require_runtime

from keras_nets import finetune
from keras_nets.prediction import Classifier


@pytest.fixture
def photos(tmp_path):
    paths = []
    for i, pixels in enumerate(random_images(6, (40, 56), seed=5)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(pixels.astype("uint8")).save(paths[-1])
    return paths


def scores(predictor, photos):
    return predictor.scores([predictor.read(path) for path in photos])


def test_a_trained_classifier_warm_starts_without_building_its_model(
    monkeypatch, trained_model, photos
):
    require_runtime("onnxruntime")
    cold = Classifier.load(None, str(trained_model), fast=True)
    expected = scores(cold, photos)
    assert np.ptp(expected[:, 0]) > 0.05, "scores that do not vary with the image prove nothing"

    def not_built(path):
        raise AssertionError("the warm start built the Keras model")

    monkeypatch.setattr(finetune, "load_classifier", not_built)
    warm = Classifier.load(None, str(trained_model), fast=True)
    names = json.loads((trained_model.parent / "class_names.json").read_text())
    assert warm.model is None and warm.class_names == names
    np.testing.assert_allclose(scores(warm, photos), expected, rtol=0, atol=1e-5)
    assert [r.predictions[0][1] for r in warm.predict_files(photos, top=1)] == [
        r.predictions[0][1] for r in cold.predict_files(photos, top=1)
    ]
    assert warm.identity == cold.identity
