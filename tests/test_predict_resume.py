"""`keras-nets predict --output results.jsonl [--resume]`: a run killed at any moment loses nothing
finished, and the rerun completes it exactly once."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from generated_data import SMALL_KWARGS, SMALL_MODEL, SMALL_SIZE, write_broken_images
from informative_weights import assert_informative, informative_classifier, random_images

from keras_nets import folder_prediction
from keras_nets.folder_prediction import ResultsFileError, predict_folder
from keras_nets.image_files import ImageError, walk_images
from keras_nets.prediction import Classifier
from PIL import Image

CLASSES = ["cat", "dog", "fox"]
IMAGES = 24
KILLED_AFTER = 10  # lines written by the first run before it is killed


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model.keras as `keras-nets train` leaves it: tiny MobileNetV2 whose outputs vary."""
    folder = tmp_path_factory.mktemp("run")
    model = informative_classifier(SMALL_MODEL, len(CLASSES), SMALL_SIZE, **SMALL_KWARGS)
    model.save(folder / "model.keras")
    (folder / "class_names.json").write_text(json.dumps(CLASSES))
    return folder / "model.keras"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """IMAGES JPEGs in two nested folders (and a hidden file, skipped), plus two broken files."""
    root = tmp_path_factory.mktemp("photos")
    for i, pixels in enumerate(random_images(IMAGES, (60, 80))):
        folder = root / ("a" if i % 2 else "b/deeper")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype("uint8")).save(folder / f"{i:03d}.jpg")
    Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(root / "a" / ".hidden.jpg")
    write_broken_images(root / "broken")
    return root


def keras_nets_predict(*argv, env=None):
    command = [sys.executable, "-m", "keras_nets", "predict", *map(str, argv)]
    return subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def by_image(lines):
    return {record["image"]: record for record in lines}


def assert_same_results(got, expected):
    assert got.keys() == expected.keys()
    for image, record in expected.items():
        if "error" in record:
            assert got[image] == record
            continue
        scores = {p["label"]: p["score"] for p in record["predictions"]}
        got_scores = {p["label"]: p["score"] for p in got[image]["predictions"]}
        assert got_scores.keys() == scores.keys(), image
        for label, score in scores.items():
            assert got_scores[label] == pytest.approx(score, abs=1e-5), (image, label)


def test_a_run_killed_half_way_and_resumed_equals_one_uninterrupted_run(tmp_path, trained, photos):
    common = (photos, "--weights", trained, "--top", 3, "--batch", 4)
    whole = keras_nets_predict(*common, "--output", tmp_path / "whole.jsonl")

    # The first run pauses (test hook) after its KILLED_AFTER-th line; it is then SIGKILLed.
    marker = tmp_path / "paused"
    output = tmp_path / "results.jsonl"
    killed = keras_nets_predict(
        *common,
        "--output",
        output,
        env={"KERAS_NETS_TEST_PAUSE": f"results-line-{KILLED_AFTER}:{marker}"},
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert killed.poll() is None, killed.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached the pause"
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert len(records(output)) == KILLED_AFTER

    # A writer killed mid-line (not ours: we write whole lines) leaves a cut-short last line.
    with open(output, "a") as f:
        f.write('{"image": "' + str(photos / "b"))
    resumed = keras_nets_predict(*common, "--output", output, "--resume")
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 1, err  # the two broken files
    assert f"{KILLED_AFTER} already there" in err

    _, err = whole.communicate(timeout=120)
    expected = records(tmp_path / "whole.jsonl")
    assert len(expected) == IMAGES + 2, err  # the hidden file skipped, the broken ones reported
    assert_informative(
        [[p["score"] for p in sorted(r["predictions"], key=lambda p: p["label"])]
         for r in expected if "predictions" in r],
        "scores",
    )
    got = records(output)  # every line parses: no truncated line is left
    assert len(got) == len(expected)  # no image twice
    assert_same_results(by_image(got), by_image(expected))


def test_an_existing_output_is_refused_without_resume_or_overwrite(tmp_path, trained, photos):
    output = tmp_path / "results.jsonl"
    output.write_text("notes the user keeps here\n")
    process = keras_nets_predict(photos, "--weights", trained, "--output", output)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert err.strip().splitlines() == [
        f"keras-nets predict: error: --output {output} exists: resume it (--resume), or replace "
        "it (--overwrite)"
    ]
    assert output.read_text() == "notes the user keeps here\n"
    with pytest.raises(ResultsFileError, match="line 1 is not a result"):
        predict_folder([photos], output, classifier=object(), resume=True)
    assert output.read_text() == "notes the user keeps here\n"


def test_the_python_api_resumes_and_overwrites(tmp_path, trained, photos):
    classifier = Classifier.load(weights=str(trained))
    output = tmp_path / "results.jsonl"
    first = predict_folder([photos / "a"], output, classifier=classifier, batch=5, top=2)
    assert first == {"predicted": IMAGES // 2, "failed": 0, "skipped": 0, "missing": []}
    again = predict_folder(
        [photos / "a", photos / "missing"], output, classifier=classifier, resume=True
    )
    assert again == {"predicted": 0, "failed": 0, "skipped": IMAGES // 2, "missing": [photos / "missing"]}
    replaced = predict_folder([photos / "broken"], output, classifier=classifier, overwrite=True)
    assert replaced["failed"] == 2
    assert [sorted(r) for r in records(output)] == [["error", "image"]] * 2


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """Seven JPEGs with an unreadable file between the 2nd and 3rd and another between the 5th
    and 6th (names sort in that order): in batches of 3, both fall mid-batch."""
    root = tmp_path_factory.mktemp("mixed")
    for i, pixels in enumerate(random_images(7, (60, 80), seed=3)):
        Image.fromarray(pixels.astype("uint8")).save(root / f"{2 * i:02d}.jpg")
    (root / "03.jpg").write_text("not a JPEG")
    (root / "09.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG cut after its signature
    return root


def test_each_image_of_a_mixed_batch_gets_its_own_prediction(tmp_path, trained, mixed_folder):
    """An unreadable file in the middle of a batch takes nobody's place: every line equals the
    prediction of its image read and predicted alone."""
    classifier = Classifier.load(weights=str(trained))
    output = tmp_path / "results.jsonl"
    counts = predict_folder([mixed_folder], output, classifier=classifier, batch=3, top=3)
    assert counts == {"predicted": 7, "failed": 2, "skipped": 0, "missing": []}
    lines = records(output)
    assert [os.path.basename(r["image"]) for r in lines] == sorted(os.listdir(mixed_folder))
    alone = {}
    for path in sorted(mixed_folder.iterdir()):
        try:
            (predictions,) = classifier.predict([classifier.read(path)], top=3)
        except ImageError as error:
            alone[str(path)] = {"image": str(path), "error": str(error)}
        else:
            alone[str(path)] = folder_prediction.record_of(path, predictions)
    assert sum("error" in r for r in alone.values()) == 2
    assert len({r["predictions"][0]["label"] for r in alone.values() if "predictions" in r}) > 1
    assert_same_results(by_image(lines), alone)


def test_error_lines_count_as_done_on_resume(tmp_path, trained, mixed_folder):
    """A file that could not be read is reported once: resume neither retries it nor writes it
    again."""
    classifier = Classifier.load(weights=str(trained))
    output = tmp_path / "results.jsonl"
    predict_folder([mixed_folder], output, classifier=classifier, batch=3)
    before = output.read_bytes()
    again = predict_folder([mixed_folder], output, classifier=classifier, batch=3, resume=True)
    assert again == {"predicted": 0, "failed": 0, "skipped": 9, "missing": []}
    assert output.read_bytes() == before


def test_folders_are_scanned_lazily_in_a_fixed_order(photos):
    scanned = walk_images(photos)
    assert next(scanned).parent == photos / "a"  # a generator: nothing listed ahead
    everything = [photos / "a" / f"{i:03d}.jpg" for i in range(1, IMAGES, 2)]
    everything += [photos / "b" / "deeper" / f"{i:03d}.jpg" for i in range(0, IMAGES, 2)]
    assert list(walk_images(photos / "a")) + list(walk_images(photos / "b")) == everything


def test_decoding_runs_at_most_a_few_batches_ahead():
    requested = []

    def sources():
        for i in range(1000):
            requested.append(i)
            yield f"{i}.jpg"

    batches = folder_prediction.decoded_batches(sources(), len, batch_size=10, workers=2)
    first = next(batches)
    assert first == [(f"{i}.jpg", len(f"{i}.jpg")) for i in range(10)]
    assert len(requested) <= 10 * (folder_prediction.PREFETCH_BATCHES + 1)
