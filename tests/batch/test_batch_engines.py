"""Spark, Dask and Ray's batch format give every image the class and score `keras-nets predict`
gives it, and a file that cannot be read its error row, while the other rows complete.

One folder of 200 photos (PNGs, and JPEGs large enough that the pipeline decodes them at a reduced
scale) plus a corrupt file; the model is a classifier saved by `keras-nets train` whose scores vary
with the image. Every engine runs on this machine and talks to 127.0.0.1 only: Spark in local mode
(driver host and bind address 127.0.0.1, no web UI), Dask on a LocalCluster(host="127.0.0.1"), and
Ray without a cluster (Ray advertises the machine's own address: its batch format is converted by
Ray's own code, in this process).
"""

import contextlib
import io
import json
import os
import pickle

import numpy as np
import pytest
from generated_data import write_trained_run
from informative_weights import assert_informative, random_images
from PIL import Image

from keras_nets.batch import Predictor, predict_spark
from keras_nets.batch import spark as spark_engine
from keras_nets.cli import main

pytestmark = pytest.mark.slow_file  # about 2 minutes: Spark and Dask start, their workers load

CLASS_NAMES = ["blue", "red"]
TOP = 2
BROKEN = "broken.jpg"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    write_trained_run(folder, CLASS_NAMES)
    return str(folder / "model.keras")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """200 photos in two folders, and a corrupt file: 160 small PNGs, and 40 JPEGs of 640x480
    that the pipeline decodes at a quarter of their size (`Image.draft`)."""
    root = tmp_path_factory.mktemp("photos")
    os.makedirs(root / "small")
    os.makedirs(root / "large")
    for i, pixels in enumerate(random_images(160, (40, 56), seed=1)):
        Image.fromarray(pixels.astype("uint8")).save(root / "small" / f"{i:03d}.png")
    for i, pixels in enumerate(random_images(40, (480, 640), seed=2)):
        Image.fromarray(pixels.astype("uint8")).save(root / "large" / f"{i:03d}.jpg", quality=90)
    (root / BROKEN).write_bytes(b"\xff\xd8\xff\xe0 not a JPEG after its first bytes")
    return str(root)


@pytest.fixture(scope="module")
def expected(model, photos):
    """{real path: (label, score)}: `keras-nets predict --json` on the folder, in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main(["predict", photos, "--weights", model, "--json", "--top", str(TOP)])
    assert status == 1  # the corrupt file
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == 200
    assert_informative([r["predictions"][0]["score"] for r in records], "the scores")
    assert {r["predictions"][0]["label"] for r in records} == set(CLASS_NAMES)
    top = {os.path.realpath(r["image"]): r["predictions"][0] for r in records}
    return {path: (best["label"], best["score"]) for path, best in top.items()}


def assert_same_answers(rows, expected):
    """`rows`: (path, label, score, top_labels, error) of every file of the folder."""
    answers, errors = {}, {}
    for path, label, score, top_labels, error in rows:
        path = os.path.realpath(path.removeprefix("file:"))
        if error is not None:
            errors[os.path.basename(path)] = error
            assert label is None and len(top_labels) == 0
        else:
            answers[path] = (label, score)
            assert len(top_labels) == TOP and top_labels[0] == label
    assert list(errors) == [BROKEN] and "not a readable image" in errors[BROKEN]
    assert answers.keys() == expected.keys()
    assert [answers[p][0] for p in sorted(answers)] == [expected[p][0] for p in sorted(answers)]
    np.testing.assert_allclose(
        [answers[p][1] for p in sorted(answers)],
        [expected[p][1] for p in sorted(answers)],
        atol=1e-4,
    )


def rows_of(records):
    """`assert_same_answers`' rows from an output's records (dicts)."""
    return [(r["path"], r["label"], r["score"], r["top_labels"], r["error"]) for r in records]


def json_lines(output):
    """The records of a directory of JSON-lines files, as Spark and Dask write them."""
    parts = sorted(p for p in output.iterdir() if not p.name.startswith(("_", ".")))
    return [json.loads(line) for part in parts for line in part.read_text().splitlines()]


@pytest.fixture(scope="module")
def spark():
    session = spark_engine.local_session(cores=2)
    assert session.conf.get("spark.driver.host") == "127.0.0.1"
    yield session
    session.stop()


def test_spark_predicts_a_folder_as_keras_nets_predict_does(spark, model, photos, expected):
    predictions = predict_spark(photos, Predictor(model, top=TOP), spark=spark, partitions=2)
    rows = predictions.select("path", "label", "score", "top_labels", "error").collect()
    assert len(rows) == 201
    assert_same_answers([tuple(row) for row in rows], expected)


def test_predict_engine_spark_writes_parquet_whole_and_refuses_to_overwrite(
    spark, model, photos, expected, tmp_path, capsys
):
    import pyarrow.parquet

    output = tmp_path / "predictions.parquet"
    argv = ["predict", photos, "--weights", model, "--top", str(TOP), "--engine", "spark"]
    assert main([*argv, "--output", str(output)]) == 1  # one file could not be read
    assert "200 image(s) predicted" in capsys.readouterr().err
    assert_same_answers(rows_of(pyarrow.parquet.read_table(output).to_pylist()), expected)
    assert sorted(os.listdir(tmp_path)) == ["predictions.parquet"]  # no temporary name, no lock

    assert main([*argv, "--output", str(output)]) == 2
    assert "exists; --overwrite replaces it" in capsys.readouterr().err

    lines = tmp_path / "predictions.jsonl"
    assert main([*argv, "--output", str(lines)]) == 1
    records = json_lines(lines)
    assert all("error" in record for record in records)  # null written as null, as Dask does
    assert_same_answers(rows_of(records), expected)


def test_predict_engine_dask_writes_json_lines_on_a_cluster_of_two_workers(
    model, photos, expected, tmp_path, capsys
):
    from dask.distributed import LocalCluster

    output = tmp_path / "predictions.jsonl"
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    )
    with cluster:
        workers = cluster.scheduler_info["workers"]
        assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
        argv = ["predict", photos, "--weights", model, "--top", str(TOP), "--engine", "dask"]
        argv += ["--scheduler", cluster.scheduler_address, "--output", str(output)]
        assert main(argv) == 1  # one file could not be read
    assert "200 image(s) predicted" in capsys.readouterr().err
    assert_same_answers(rows_of(json_lines(output)), expected)
    assert sorted(os.listdir(tmp_path)) == ["predictions.jsonl"]  # no temporary name, no lock


def test_ray_batches_of_binary_files_are_predicted_as_keras_nets_predict_does(
    model, photos, expected
):
    """Ray Data's `read_binary_files(..., include_paths=True)` gives blocks of (bytes, path);
    `map_batches(Predictor, ...)` hands each actor Ray's numpy batch of one, and turns what it
    returns into a block: both conversions are Ray's own code, run here without a cluster."""
    import pyarrow
    from ray.data.block import BlockAccessor

    from keras_nets.images.files import walk_images

    paths = sorted(map(str, walk_images(photos)))
    contents = [open(path, "rb").read() for path in paths]
    predictor = Predictor(model, top=TOP)
    rows = []
    for start in range(0, len(paths), 64):
        block = pyarrow.table(
            {"bytes": contents[start : start + 64], "path": paths[start : start + 64]}
        )
        batch = BlockAccessor.for_block(block).to_batch_format("numpy")
        result = BlockAccessor.batch_to_block(predictor(batch))
        rows += result.select(["path", "label", "score", "top_labels", "error"]).to_pylist()
    assert_same_answers([tuple(row.values()) for row in rows], expected)
    # What an engine sends to its workers: the settings, not the model; a copy in this process
    # uses the model loaded here.
    assert len(pickle.dumps(predictor)) < 1000
    assert pickle.loads(pickle.dumps(predictor)).classifier is predictor.classifier


@pytest.mark.parametrize(
    "arguments, refusal",
    [
        ({"weights": None}, "weights=None: random weights would differ on every worker"),
        ({"model": "resnet5"}, "model='resnet5': expected one of"),
        ({"top": 0}, "top=0: expected a positive integer"),
        ({"fast": True, "int8": True}, "int8=True: expected fast=True and calibration="),
        ({"calibration": "photos/"}, "calibration='photos/': goes with int8=True"),
    ],
)
def test_a_predictor_refuses_bad_settings_before_loading_anything(arguments, refusal):
    with pytest.raises(ValueError, match=refusal.replace("(", r"\(").replace("?", r"\?")):
        Predictor(**{"model": "mobilenet_v2", **arguments})
