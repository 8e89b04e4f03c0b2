"""`keras-nets predict --output results.jsonl [--resume]`: a run killed at any moment loses nothing
finished, and the rerun completes it exactly once."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from generated_data import write_broken_images, write_trained_run
from informative_weights import assert_informative, random_images
from PIL import Image

from keras_nets import folder_prediction
from keras_nets.folder_prediction import ResultsFileError, predict_folder
from keras_nets.image_files import ImageError, walk_images
from keras_nets.prediction import Classifier

CLASSES = ["cat", "dog", "fox"]
IMAGES = 24
KILLED_AFTER = 10  # lines written by the first run before it is killed


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model.keras as `keras-nets train` leaves it: tiny MobileNetV2 whose outputs vary."""
    folder = tmp_path_factory.mktemp("run")
    write_trained_run(folder, CLASSES)
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
    """The results in a results file (every line but the first, which records the model)."""
    with open(path) as f:
        header, *lines = map(json.loads, f)
    assert list(header) == ["keras_nets_predict"]
    return lines


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
        [
            [p["score"] for p in sorted(r["predictions"], key=lambda p: p["label"])]
            for r in expected
            if "predictions" in r
        ],
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
    with pytest.raises(ResultsFileError, match="line 1 is not the first line of a keras-nets"):
        predict_folder([photos], output, classifier=object(), resume=True)
    assert output.read_text() == "notes the user keeps here\n"


def test_the_python_api_resumes_and_overwrites(tmp_path, trained, photos):
    classifier = Classifier.load(weights=str(trained))
    output = tmp_path / "results.jsonl"
    first = predict_folder([photos / "a"], output, classifier=classifier, batch=5, top=2)
    assert first == {"predicted": IMAGES // 2, "failed": 0, "skipped": 0, "missing": []}
    again = predict_folder(
        [photos / "a", photos / "missing"], output, classifier=classifier, top=2, resume=True
    )
    assert again == {
        "predicted": 0,
        "failed": 0,
        "skipped": IMAGES // 2,
        "missing": [photos / "missing"],
    }
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


# --- the results file is a state file: who wrote it, one writer at a time, paths normalised -----


def other_weights(classifier):
    """The same network with one weight changed: another model, as far as results go."""
    other = Classifier.load(weights=str(classifier.weights_path))
    arrays = other.model.get_weights()
    arrays[-1] = arrays[-1] + 0.5
    other.model.set_weights(arrays)
    return other


RESUME_REFUSALS = {
    "another model": (
        lambda c: {"classifier": other_weights(c)},
        "was written by another model or settings (weights_sha256 ",
    ),
    "another top": (lambda c: {"classifier": c, "top": 3}, "(top 2 there, 3 now)"),
}


@pytest.fixture(scope="module")
def classifier(trained):
    loaded = Classifier.load(weights=str(trained))
    loaded.weights_path = trained
    return loaded


@pytest.mark.parametrize("case", list(RESUME_REFUSALS))
def test_a_resume_by_another_model_is_refused_and_the_file_kept(tmp_path, classifier, photos, case):
    output = tmp_path / "results.jsonl"
    predict_folder([photos / "a"], output, classifier=classifier, top=2)
    before = output.read_bytes()
    arguments, message = RESUME_REFUSALS[case]
    with pytest.raises(ResultsFileError, match=re.escape(message)):
        predict_folder([photos], output, resume=True, **{"top": 2, **arguments(classifier)})
    assert output.read_bytes() == before


def test_a_second_run_on_a_file_being_written_is_refused(tmp_path, classifier, photos):
    output = tmp_path / "results.jsonl"
    identity = folder_prediction.model_identity(classifier, "imagenet", 5)
    with folder_prediction.ResultsFile(output, identity=identity):  # a run writing it
        for flags in ({"resume": True}, {"overwrite": True}):
            with pytest.raises(ResultsFileError, match="another keras-nets predict is writing it"):
                predict_folder([photos / "a"], output, classifier=classifier, **flags)
    assert records(output) == []  # the header alone: nothing written twice, nothing cut
    assert predict_folder([photos / "a"], output, classifier=classifier, resume=True)["predicted"]


def test_a_resume_matches_images_however_the_folder_is_typed(
    tmp_path, monkeypatch, classifier, photos
):
    output = tmp_path / "results.jsonl"
    monkeypatch.chdir(photos)
    predict_folder(["a"], output, classifier=classifier)
    (tmp_path / "link").symlink_to(photos)
    for typed in (photos / "a", tmp_path / "link" / "a", "./a/../a"):
        again = predict_folder([typed], output, classifier=classifier, resume=True)
        assert again["predicted"] == 0 and again["skipped"] == IMAGES // 2, typed
    assert [r["image"] for r in records(output)] == [
        str(photos / "a" / f"{i:03d}.jpg") for i in range(1, IMAGES, 2)
    ]


# --- --output never writes through, cuts or replaces a file of the user's ------------------------


def notes(folder):
    path = folder / "notes.txt"
    path.write_text("my notes, no newline at the end")
    return path


def symlink_to_notes(folder):
    (folder / "results.jsonl").symlink_to(notes(folder))
    return folder / "results.jsonl"


def an_input_image(folder):
    path = folder / "photo.png"
    Image.fromarray(np.full((8, 8, 3), 90, "uint8")).save(path)
    return path


def an_input_without_extension(folder):
    path = folder / "photo"
    path.write_bytes(an_input_image(folder).read_bytes())
    return path


def a_directory(folder):
    (folder / "results.jsonl").mkdir()
    return folder / "results.jsonl"


def a_fifo(folder):
    os.mkfifo(folder / "results.jsonl")
    return folder / "results.jsonl"


OUTPUT_CASES = {  # what --output names, the flag given, the error
    "notes without a final newline, resumed": (notes, "resume", "line 1 is not the first line"),
    "a symbolic link to notes, overwritten": (symlink_to_notes, "overwrite", "a symbolic link"),
    "an input image, overwritten": (an_input_image, "overwrite", "the name of an image"),
    "an input without extension, overwritten": (
        an_input_without_extension,
        "overwrite",
        "one of the images to predict",
    ),
    "a directory, resumed": (a_directory, "resume", "not a regular file"),
    "a FIFO, overwritten": (a_fifo, "overwrite", "not a regular file"),
}


@pytest.mark.parametrize("case", list(OUTPUT_CASES))
def test_an_output_that_is_not_our_results_file_is_refused_untouched(tmp_path, case):
    make, flag, message = OUTPUT_CASES[case]
    output = make(tmp_path)
    contents = {
        p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()
    }
    inputs = [tmp_path, output] if case.startswith("an input") else [tmp_path]
    with pytest.raises(ResultsFileError, match=re.escape(message)):
        predict_folder(inputs, output, classifier=object(), **{flag: True})
    assert contents == {p: p.read_bytes() for p in contents}
