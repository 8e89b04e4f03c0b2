"""decode_predictions names ImageNet classes offline, in keras.applications' output format."""

import hashlib
import importlib
import re

import keras
import numpy as np
import pytest
from keras.src.applications import imagenet_utils as keras_imagenet_utils
from keras.src.utils import file_utils

import keras_nets
from keras_nets import imagenet, registry

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too

KERAS_CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"  # the file keras.applications downloads
# Every module that defines a builder, and the keras.applications-style vgg16 / vgg19 paths.
MODULES = sorted(
    {c.module_name.split(".")[-1] for c in registry.models().values()} | {"vgg16", "vgg19"}
)


@pytest.fixture
def offline(keras_home, monkeypatch):
    """An empty Keras cache and no downloads: get_file fails the test if it is called."""

    def get_file(*args, **kwargs):
        raise AssertionError(f"a download was attempted: get_file{args}")

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    monkeypatch.setattr(file_utils, "get_file", get_file)


def softmax_predictions(samples=3, seed=0):
    logits = np.random.default_rng(seed).normal(0.0, 3.0, (samples, 1000))
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits.astype("float32")))


def test_packaged_class_index_is_the_keras_file():
    assert hashlib.md5(imagenet.CLASS_INDEX_PATH.read_bytes()).hexdigest() == KERAS_CLASS_INDEX_MD5


def test_works_offline(offline):
    preds = np.zeros((1, 1000), dtype="float32")
    preds[0, 386] = 0.9  # African elephant
    preds[0, 101] = 0.1  # tusker
    (decoded,) = keras_nets.decode_predictions(preds, top=2)
    assert decoded == [
        ("n02504458", "African_elephant", pytest.approx(0.9)),
        ("n01871265", "tusker", pytest.approx(0.1)),
    ]


def test_equals_keras_decode_predictions(offline, monkeypatch):
    # Keras reads the same file (same md5) from its cache; hand it the packaged copy.
    def keras_cached_file(fname, origin=None, file_hash=None, **kwargs):
        assert (fname, file_hash) == ("imagenet_class_index.json", KERAS_CLASS_INDEX_MD5)
        return str(imagenet.CLASS_INDEX_PATH)

    monkeypatch.setattr(file_utils, "get_file", keras_cached_file)
    monkeypatch.setattr(keras_imagenet_utils, "CLASS_INDEX", None)
    preds = softmax_predictions()

    for top in (1, 5, 20):
        expected = keras.applications.imagenet_utils.decode_predictions(preds, top=top)
        actual = keras_nets.decode_predictions(preds, top=top)
        assert actual == expected
        for sample in actual:  # (wordnet id, label, score), best first
            assert all(isinstance(wnid, str) and isinstance(name, str) for wnid, name, _ in sample)
            scores = [score for _, _, score in sample]
            assert scores == sorted(scores, reverse=True)


def test_every_model_module_decodes_the_same(offline):
    preds = softmax_predictions()
    expected = imagenet.decode_predictions(preds)
    assert keras_nets.decode_predictions(preds) == expected
    for module_name in MODULES:
        module = importlib.import_module(f"keras_nets.{module_name}")
        assert module.decode_predictions(preds) == expected, module_name


@pytest.mark.parametrize("shape", [(2, 10), (1000,), (1, 1000, 1), (2, 1001)])
def test_predictions_must_have_shape_samples_by_1000(offline, shape):
    message = rf"preds has shape {re.escape(str(shape))}.*\(samples, 1000\)"
    with pytest.raises(ValueError, match=message):
        keras_nets.decode_predictions(np.zeros(shape))


@pytest.mark.parametrize("top", [0, 1001, 2.0])
def test_top_must_be_from_1_to_1000(offline, top):
    with pytest.raises(ValueError, match=rf"top={top!r}: expected an integer from 1 to 1000"):
        keras_nets.decode_predictions(softmax_predictions(), top=top)
