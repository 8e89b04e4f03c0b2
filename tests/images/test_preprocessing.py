"""Every model module's preprocess_input is keras.applications' for the same weights, except that
it never modifies the caller's array."""

import importlib
import importlib.util

import numpy as np
import pytest
from keras.applications import imagenet_utils

from keras_nets import registry

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too


def import_path(config):
    """The module users import a model's preprocess_input from: keras_nets.<name> where it
    exists (keras_nets.vgg16), else the defining module (keras_nets.densenet)."""
    if importlib.util.find_spec(f"keras_nets.{config.name}") is not None:
        return config.name
    return config.module_name.split(".")[-1]


MODULES = sorted({import_path(c): c for c in registry.models().values()}.items())


def keras_preprocess_input(module_name, mode):
    """keras.applications.<module_name>.preprocess_input; the registry's mode where Keras has no such
    module (ResNet50 included: keras.applications.resnet50 is caffe mode, like the v0.2 weights)."""
    try:
        module = importlib.import_module(f"keras.applications.{module_name}")
    except ImportError:
        return lambda x: imagenet_utils.preprocess_input(x, mode=mode)
    return module.preprocess_input


def images(dtype, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (2, 8, 8, 3)).astype(dtype)


@pytest.fixture(params=MODULES, ids=[module_name for module_name, _ in MODULES])
def modules(request):
    """(our module, Keras' preprocess_input) for one model module."""
    module_name, config = request.param
    ours = importlib.import_module(f"keras_nets.{module_name}")
    return ours, keras_preprocess_input(module_name, config.preprocessing)


def test_equals_keras_preprocess_input_on_float_and_uint8_images(modules):
    ours, keras_preprocess = modules
    for dtype in ["float32", "float64", "uint8"]:
        x = images(dtype)
        expected = np.asarray(keras_preprocess(x.copy()))  # Keras scales float arrays in place
        actual = np.asarray(ours.preprocess_input(x))
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-4, err_msg=dtype)


def test_never_modifies_its_input(modules):
    ours, _ = modules
    for dtype in ["float32", "uint8"]:
        x = images(dtype)
        original = x.copy()
        ours.preprocess_input(x)
        np.testing.assert_array_equal(x, original, err_msg=dtype)
        assert x.dtype == original.dtype


def test_resnet50_is_caffe_mode():
    from keras_nets.resnet50 import preprocess_input

    x = np.zeros((1, 1, 1, 3), dtype="uint8")
    x[..., 0] = 255  # pure red: BGR order, minus the ImageNet mean
    expected = [0 - 103.939, 0 - 116.779, 255 - 123.68]
    np.testing.assert_allclose(preprocess_input(x)[0, 0, 0], expected, rtol=1e-6)


@pytest.mark.parametrize("module_name", ["inception_v3", "mobilenet_v2"])
def test_tf_mode_scales_to_minus_one_one(module_name):
    preprocess_input = importlib.import_module(f"keras_nets.{module_name}").preprocess_input
    x = np.array([[[[0, 127.5, 255]]]], dtype="float32")
    np.testing.assert_allclose(preprocess_input(x), [[[[-1.0, 0.0, 1.0]]]])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("mode", ["tf", "caffe", "torch"])
def test_numpy_images_are_scaled_by_keras_arithmetic_bit_for_bit_without_keras(mode, data_format):
    # numpy in, numpy out runs keras_nets' own copy of Keras' arithmetic (the fast path's warm
    # start imports no Keras): the same operations in the same order, so the same float32 bits.
    from keras_nets.core import imagenet

    batch = images("float32")
    if data_format == "channels_first":
        batch = np.moveaxis(batch, -1, 1).copy()
    for x in (batch, batch[0]):  # a batch and a single image
        expected = imagenet_utils.preprocess_input(x.copy(), data_format=data_format, mode=mode)
        actual = imagenet.preprocess_input(x, mode, data_format=data_format)
        assert isinstance(actual, np.ndarray) and actual.dtype == np.float32
        np.testing.assert_array_equal(actual, expected)
