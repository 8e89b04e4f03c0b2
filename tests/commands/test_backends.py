"""keras_nets on JAX and PyTorch: nothing imports TensorFlow unless TensorFlow is the backend.

Each test runs a child process with KERAS_BACKEND set, since Keras picks its backend once per
process. A backend that is not installed is skipped (CI installs JAX, not PyTorch). The rest of the
suite runs on other backends as `python -m pytest -m backend` (see conftest.py and
docs/guides/backends.md).
"""

import ast
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow_file  # minutes: parallel runs start it first

OTHER_BACKENDS = ["jax", "torch"]

# Imports every module of keras_nets and prints the ones after whose import TensorFlow was loaded.
# Modules named after a backend (keras_nets._gradients.tensorflow, ...) hold what only that backend
# can do and are imported only when it is the active one: those of other backends are not walked.
IMPORT_EVERY_MODULE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import keras, keras_nets

    backends = {"tensorflow", "jax", "torch"} - {keras.backend.backend()}
    loaded_tensorflow = ["keras_nets"] if "tensorflow" in sys.modules else []
    for module in pkgutil.walk_packages(keras_nets.__path__, "keras_nets."):
        last = module.name.rsplit(".", 1)[-1]
        if last == "__main__" or last in backends:
            continue
        importlib.import_module(module.name)
        if "tensorflow" in sys.modules and not loaded_tensorflow:
            loaded_tensorflow.append(module.name)
    print(json.dumps({"backend": keras.backend.backend(), "loaded_tensorflow": loaded_tensorflow}))
    """
)

# As without TensorFlow installed: `import tensorflow` raises ImportError and find_spec gives None.
WITHOUT_TENSORFLOW = textwrap.dedent(
    """
    import json, sys
    sys.modules["tensorflow"] = None
    import numpy as np
    import keras_nets
    from keras_nets.imagenet import decode_predictions

    model = keras_nets.create_model("mobilenet_v2", weights=None, alpha=0.35, input_shape=(96, 96, 3))
    images = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    probabilities = model.predict(keras_nets.get_config("mobilenet_v2").preprocess_input(images))
    top = decode_predictions(probabilities, top=3)
    print(json.dumps({"shape": list(probabilities.shape), "top": [len(t) for t in top]}))
    """
)


def run_on(backend, code):
    """Runs `code` in a child process on the Keras `backend`; its last stdout line, parsed."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (`pip install {backend}` to test on it)")
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "KERAS_BACKEND": backend},
        cwd=os.path.dirname(os.path.dirname(__file__)),  # tests/: its helpers import by name
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_no_module_imports_tensorflow_on_another_backend(backend):
    report = run_on(backend, IMPORT_EVERY_MODULE)
    assert report == {"backend": backend, "loaded_tensorflow": []}, (
        f"importing {report['loaded_tensorflow']} loaded TensorFlow on {backend}: import it "
        "lazily, inside the function that needs it"
    )


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_a_model_builds_predicts_and_decodes_without_tensorflow(backend):
    report = run_on(backend, WITHOUT_TENSORFLOW)
    assert report == {"shape": [2, 1000], "top": [3, 3]}


# compile_for_inference and export on the backend: outputs equal the Keras model's on the backend.
FAST_AND_EXPORTED = textwrap.dedent(
    """
    import json, os, sys, tempfile
    import keras, numpy as np, onnxruntime
    import keras_nets
    from informative_weights import informative_model, random_images

    model = informative_model("mobilenet_v2", 96, alpha=0.35, classifier_activation=None)
    images = keras_nets.get_config("mobilenet_v2").preprocess_input(random_images(3, 96))
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    fast = keras_nets.compile_for_inference(model, runtime="onnxruntime")
    path = keras_nets.export(model, os.path.join(tempfile.mkdtemp(), "model.onnx"))
    session = onnxruntime.InferenceSession(path)
    exported = session.run(None, {session.get_inputs()[0].name: images})[0]
    scale = float(np.abs(expected).max())
    print(json.dumps({
        "varies_with_input": float(np.abs(expected - expected[:1]).max()) > 1e-3 * scale,
        "fast": float(np.abs(fast.predict(images) - expected).max()) / scale,
        "exported": float(np.abs(exported - expected).max()) / scale,
    }))
    """
)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_compile_for_inference_and_onnx_export_equal_keras_on_another_backend(backend):
    """Through Keras' own ONNX export on the backend (jax2onnx or torch.onnx), or on JAX without
    jax2onnx through TensorFlow in a child process."""
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    report = run_on(backend, FAST_AND_EXPORTED)
    assert report["varies_with_input"]
    assert report["fast"] < 1e-4 and report["exported"] < 1e-4, report


def declares_backend_mark(path):
    """Whether the test file at `path` says `pytestmark = pytest.mark.backend` (alone or listed)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "pytestmark" for target in node.targets
        ):
            return "pytest.mark.backend" in ast.unparse(node.value)
    return False


def test_the_backend_runs_select_the_files_that_say_so_themselves(request):
    """CI's JAX and PyTorch runs (`-m backend`) take exactly the tests of the files that carry
    `pytestmark = pytest.mark.backend`: no list of file names elsewhere adds or drops one, so a file
    moved or renamed keeps its place in those runs."""
    files = {item.path for item in request.session.items}
    marked = {item.path for item in request.session.items if item.get_closest_marker("backend")}
    assert marked == {path for path in files if declares_backend_mark(path)}
