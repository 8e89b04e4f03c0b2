"""The notebooks run end to end, offline, on generated weights and photos and on real digits.

Each notebook starts with a cell tagged "parameters"; the test replaces that cell's source (same
names, small values) and executes the notebook in a fresh kernel, so an API change that breaks a
notebook fails here.
"""

import ast
import json
import pathlib

import pytest

pytestmark = pytest.mark.slow_file  # minutes: parallel runs start it first

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from generated_data import SMALL_MODEL, imagenet_like_weights, random_rgb  # noqa: E402
from PIL import Image  # noqa: E402 - after the skips above

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / "notebooks"
PREDICT = NOTEBOOKS / "01_predict_elephant.ipynb"
FINE_TUNE = NOTEBOOKS / "02_fine_tune_frozen_base.ipynb"
# All four seed models, as users run it: with random weights files it takes ~30 s on 2 cores
# (~17 s with MobileNetV2 and ResNet50 alone).
PREDICT_MODELS = ["xception", "inception_v3", "resnet50", "mobilenet_v2"]
GRAD_CAM = NOTEBOOKS / "03_grad_cam_elephant.ipynb"
GRAD_CAM_MODELS = ["resnet50", "mobilenet_v2"]  # two of the four seed models keep it fast


@pytest.fixture(autouse=True)
def offline_plots(monkeypatch, keras_home):
    # The kernel inherits the environment: Jupyter's inline backend, headless (like Agg), which
    # also sends each figure to the notebook as a PNG output the tests can see.
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")


def assigned_names(source):
    return {
        target.id
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
    }


def run_notebook(path, parameters, cwd):
    """Executes the notebook at `path` in `cwd` with its parameters cell replaced."""
    notebook = nbformat.read(path, as_version=4)
    cell = notebook.cells[0]
    assert "parameters" in cell.metadata.get("tags", []), f"{path.name}: no parameters cell first"
    assert assigned_names(parameters) == assigned_names(cell.source), "set every parameter"
    cell.source = parameters
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return notebook


def outputs(notebook, output_type):
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == output_type
    ]


@pytest.mark.parametrize("path", [PREDICT, FINE_TUNE, GRAD_CAM], ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def run_on_a_generated_photo(path, models, tmp_path, parameters):
    """Runs the notebook at `path` on a generated photo, each of `models` with generated
    ImageNet-like weights; `parameters` adds to its first cell's MODELS, WEIGHTS and IMAGE."""
    photo = tmp_path / "photo.jpg"
    Image.fromarray(random_rgb(120, 160)).save(photo)
    weights = {
        name: imagenet_like_weights(tmp_path / f"{name}.weights.h5", name) for name in models
    }
    head = f"MODELS = {models!r}\nWEIGHTS = {weights!r}\nIMAGE = {str(photo)!r}\n"
    return run_notebook(path, head + parameters, tmp_path)


def test_predict_notebook_shows_the_top_five_of_each_model(tmp_path):
    notebook = run_on_a_generated_photo(PREDICT, PREDICT_MODELS, tmp_path, "TOP = 5\n")
    printed = "".join(output.text for output in outputs(notebook, "stream"))
    for name in PREDICT_MODELS:
        assert f"\n{name} [(" in printed
    figures = [o for o in outputs(notebook, "display_data") if "image/png" in o.data]
    assert len(figures) == 1


def test_predict_notebook_offline_uses_the_shipped_photo_and_says_so(tmp_path, monkeypatch):
    # No elephant.jpg beside the notebook and no network (every https request goes to a proxy
    # on the discard port, where nothing listens): the photo keras-nets ships, in one line.
    for variable in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    weights = imagenet_like_weights(tmp_path / "mobilenet_v2.weights.h5", "mobilenet_v2")
    parameters = (
        f"MODELS = ['mobilenet_v2']\nWEIGHTS = {{'mobilenet_v2': {str(weights)!r}}}\n"
        "IMAGE = 'elephant.jpg'\nTOP = 5\n"
    )
    notebook = run_notebook(PREDICT, parameters, tmp_path)
    printed = "".join(output.text for output in outputs(notebook, "stream")).splitlines()
    fallback = [line for line in printed if "cannot be downloaded" in line]
    assert len(fallback) == 1 and "using the photo shipped with keras-nets" in fallback[0]
    assert printed[printed.index(fallback[0]) + 1].endswith("chelsea.jpg")  # print(IMAGE)
    assert any(line.startswith("mobilenet_v2 [(") for line in printed)


def offline_manifest(path):
    """The packaged weights manifest with every URL on a closed local port: a machine offline."""
    from keras_nets import pretrained

    models = json.loads(pretrained.PACKAGED_MANIFEST.read_text())["models"]
    for parts in models.values():
        for item in parts.values():
            item["urls"] = [f"http://127.0.0.1:9/{item['file']}"]
    path.write_text(json.dumps({"models": models}))
    return path


def test_fine_tune_notebook_runs_offline_on_digits_it_makes_itself(tmp_path, monkeypatch):
    """Its own parameters, but 32 px and 1 epoch a phase: no ImageNet weights can be downloaded
    and no DATA_DIR exists, so it writes scikit-learn's digits and trains from scratch."""
    monkeypatch.setenv("KERAS_NETS_MANIFEST", str(offline_manifest(tmp_path / "manifest.json")))
    parameters = "\n".join(
        [
            f"MODEL = {SMALL_MODEL!r}",
            'BASE_KWARGS = {"alpha": 0.35}',
            'WEIGHTS = "imagenet"',
            f"DATA_DIR = {str(tmp_path / 'digits')!r}",
            "IMAGE_SIZE = 32",
            "BATCH_SIZE = 32",
            "EPOCHS = 1",
            'FINE_TUNE_FROM = "block_16"',
            "FINE_TUNE_EPOCHS = 1",
            "FINE_TUNE_LEARNING_RATE = 1e-5",
            f"OUTPUT = {str(tmp_path / 'out')!r}",
        ]
    )
    notebook = run_notebook(FINE_TUNE, parameters, tmp_path)
    printed = "".join(output.text for output in outputs(notebook, "stream"))
    assert "Found 1400 files belonging to 10 classes." in printed
    assert "no ImageNet weights here: training mobilenet_v2 from scratch (weights=None)" in printed
    assert "base layers from 'block_16' on are trainable" in printed
    assert "Epoch 2/2" in printed  # the fine-tuning phase continues the epoch count
    figures = [o for o in outputs(notebook, "display_data") if "image/png" in o.data]
    assert len(figures) == 2  # sample images, training curves
    digits = [str(d) for d in range(10)]
    assert json.loads((tmp_path / "out" / "class_names.json").read_text()) == digits
    assert (tmp_path / "out" / "model.keras").is_file()


def test_grad_cam_notebook_explains_two_classes_per_model(tmp_path):
    notebook = run_on_a_generated_photo(GRAD_CAM, GRAD_CAM_MODELS, tmp_path, "SECOND = 2\n")
    printed = "".join(output.text for output in outputs(notebook, "stream"))
    assert "\nresnet50 " in printed and "\nmobilenet_v2 out_relu [(" in printed
    figures = [o for o in outputs(notebook, "display_data") if "image/png" in o.data]
    assert len(figures) == 1
