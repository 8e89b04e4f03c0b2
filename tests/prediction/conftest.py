"""A run of `keras-nets train` to predict with, shared by the prediction tests."""

import pytest
from generated_data import write_trained_run

from keras_nets.prediction import Classifier

CLASS_NAMES = ["blue", "red"]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A folder as `keras-nets train` leaves it: model.keras, a small two-class classifier whose
    outputs vary with the image, and class_names.json (blue, red). Read, never changed."""
    folder = tmp_path_factory.mktemp("run")
    write_trained_run(folder, CLASS_NAMES)
    return folder


@pytest.fixture(scope="session")
def trained_model(trained_run):
    """The path of the trained run's model.keras."""
    return trained_run / "model.keras"


@pytest.fixture(scope="session")
def trained_classifier(trained_model):
    return Classifier.load(None, str(trained_model))


@pytest.fixture
def loaded_once(monkeypatch, trained_classifier):
    """`Classifier.load` returns the trained run's classifier, loaded once for all the tests that
    use this (loading is not what they test)."""
    monkeypatch.setattr(
        Classifier, "load", classmethod(lambda cls, *args, **kwargs: trained_classifier)
    )
