import collections
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite converts dozens of small models to ONNX: in this process, not a child each (~5 s
# saved per conversion); tests/inference/test_onnx_conversion_process.py tests the child-process default.
os.environ.setdefault("KERAS_NETS_ONNX_IN_PROCESS", "1")
# PyTorch's OpenMP threads, one per core in each of the parallel workers (and their children),
# spin while they wait for each other: on CI's 2 cores, finetune and predict_cli on PyTorch took
# 80 s with 2 workers and 56 s with one thread each. TensorFlow (297 s against 321 s on features,
# preprocessing and int8) and JAX (194 s against 224 s) ran no faster that way and keep theirs.
if os.environ.get("KERAS_BACKEND") == "torch":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(__file__))  # tests import their shared helpers by name

import keras
import pytest
from weights_server import published, published_files  # noqa: F401 - fixtures for all tests

from keras_nets import list_models

# --- The part of the suite that depends on the Keras backend ------------------------------------
# A test file that depends on the backend says so itself: `pytestmark = pytest.mark.backend`
# (building every model and loading the published weights layout; preprocessing and decoding;
# fine-tuning, predict, train, features, Grad-CAM, evaluate; export formats a backend cannot
# write). Those files run on TensorFlow with the rest of the suite, and again on JAX and PyTorch
# in CI (README, "Backends"): `KERAS_BACKEND=jax python -m pytest -q -m backend`. On a backend
# other than TensorFlow, a test parametrised over registry models runs for BACKEND_MODELS only
# (a model's layers are the same Keras layers on every backend; these three cover separable and
# depthwise convolutions, zero padding, residual sums, concatenation, channel split and shuffle;
# ResNet50's layers are all among theirs, and its Keras 2 layout still loads on every backend in
# tests/models/test_resnet50.py; the series' fifteen alone would take JAX ~3x CI's budget, ResNet50
# as a fourth 28 more tests), and a test that only TensorFlow can run (tf.data, SavedModel,
# TFLite, the "tensorflow" runtime) is marked `tensorflow_only`, or parametrised with one of
# TENSORFLOW_ONLY_PARAMETERS, and skipped.
BACKEND_MODELS = ("xception", "mobilenet_v2", "shufflenet_v2")
TENSORFLOW_ONLY_PARAMETERS = {"tensorflow", "saved_model", "tflite"}  # a runtime, export formats


def pytest_collection_modifyitems(config, items):
    backend = keras.backend.backend()
    skipped_models = set() if backend == "tensorflow" else set(list_models()) - set(BACKEND_MODELS)
    kept, deselected = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        names = {v for v in params.params.values() if isinstance(v, str)} if params else set()
        if backend != "tensorflow" and (
            item.get_closest_marker("tensorflow_only") or names & TENSORFLOW_ONLY_PARAMETERS
        ):
            item.add_marker(pytest.mark.skip(reason=f"TensorFlow only (Keras backend: {backend})"))
        if names & skipped_models:
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    # pytest-xdist hands out whole files (--dist loadfile) in this order (--no-loadscope-reorder):
    # the files that take minutes first (`pytestmark = pytest.mark.slow_file`), then the others,
    # most tests first, so that the run does not end with one worker alone on a long file.
    tests_in_file = collections.Counter(item.path for item in items)
    items.sort(
        key=lambda item: (not item.get_closest_marker("slow_file"), -tests_in_file[item.path])
    )


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Automatic layer names restart per test, so no test depends on what ran before it.

    free_memory=False skips a full garbage collection per test; the names reset all the same.
    """
    keras.backend.clear_session(free_memory=False)
    yield


@pytest.fixture(autouse=True)
def _own_keras_home(tmp_path_factory, monkeypatch):
    """Each test its own empty $KERAS_HOME: the compiled-model cache that compile_for_inference
    and --fast write there (keras_nets.inference.cache) never answers one test from another's
    conversion, and nothing is written to the home of whoever runs the suite."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache: `$KERAS_HOME/models` is where published weights are cached."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home
