"""`keras-nets predict DIR --engine spark|dask --output OUT`: an engine's predictions written to
a directory of Parquet or JSON-lines files, whole or not at all.

    check_output("out.parquet", overwrite=False)      # cheap: before any engine is imported
    write_predictions("spark", ["photos/"], "out.parquet", predictor)   # {"predicted", "failed"}

OUT is written by the engine under a temporary name beside it and renamed when complete
(`safe_files.atomic_directory`), while a lock beside it (".OUT.lock") keeps a second run out: an
interruption leaves what was there before. An existing OUT is replaced only with `overwrite`.
"""

import json
import os

from keras_nets.batch.predictor import PATH, RESULT_TYPES
from keras_nets.core import safe_files

# An output's format, from its name: a directory of Parquet files or of JSON-lines files.
FORMATS = {".parquet": "parquet", ".jsonl": "json"}


def check_output(output, overwrite=False):
    """None, or why `output` cannot be written: its name must say its format (FORMATS), its
    folder exist, and nothing be there unless `overwrite` (then only a directory)."""
    suffix = os.path.splitext(os.fspath(output).rstrip(os.sep))[1]
    if suffix not in FORMATS:
        return f"{output}: expected a name ending in {' or '.join(FORMATS)} (the format written)"
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        return f"{output}: the directory {parent} does not exist"
    problem = safe_files.overwrite_problem(output, overwrite, directory=True)
    if problem == safe_files.EXISTS:
        return f"{output}: exists; --overwrite replaces it"
    if problem:
        return f"{output}: is {problem}; not replaced"
    return None


def write_predictions(engine, inputs, output, predictor, *, overwrite=False, connect=None):
    """Predicts the images of `inputs` on `engine` ("spark" or "dask") into `output`; returns
    {"predicted": n, "failed": n}.

    Args:
      predictor: a `Predictor`.
      connect: where the engine runs: Spark's master URL or a Dask scheduler's address; None: this
        machine (`spark.local_session`, or a Dask LocalCluster of one worker per core, both on
        127.0.0.1 only).
    """
    problem = check_output(output, overwrite)
    if problem:
        raise ValueError(problem)
    output = os.path.abspath(output)
    folder, name = os.path.split(output)
    lock = safe_files.locked(folder, "output", name=f".{name}.lock")
    write = write_with_spark if engine == "spark" else write_with_dask
    try:
        with lock, safe_files.atomic_directory(output, overwrite) as partial:
            write(
                inputs, os.fspath(partial), FORMATS[os.path.splitext(name)[1]], predictor, connect
            )
            return counts(os.fspath(partial))
    except safe_files.LockedError:
        raise safe_files.LockedError(
            f"output={output}: another keras-nets run is writing it; wait for it to finish, or "
            "choose another name"
        ) from None


def write_with_spark(inputs, path, format, predictor, master):
    from keras_nets.batch import spark

    if master is None:
        session = spark.local_session()
    else:
        from pyspark.sql import SparkSession

        session = SparkSession.builder.master(master).appName("keras-nets").getOrCreate()
    writer = spark.predict_spark(inputs, predictor, spark=session).write
    if format == "parquet":
        writer.parquet(path)
    else:  # null fields written as null, as Dask's lines have them
        writer.option("ignoreNullFields", "false").json(path)


def write_with_dask(inputs, path, format, predictor, scheduler):
    import pyarrow
    from dask.distributed import Client, LocalCluster

    from keras_nets.batch import dask

    if scheduler is None:
        workers = os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        )
        client = Client(cluster)
    else:
        cluster, client = None, Client(scheduler)
    try:
        frame = dask.predict_dask(inputs, predictor)
        if format == "parquet":
            # given, not inferred: a partition whose `error` is all None would infer type null
            types = {PATH: "string", **RESULT_TYPES}
            frame.to_parquet(
                path,
                schema=pyarrow.schema([(c, arrow_type(t)) for c, t in types.items()]),
                write_index=False,
            )
        else:
            os.mkdir(path)
            frame.to_json(os.path.join(path, "part-*.jsonl"), orient="records", lines=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def arrow_type(kind):
    """The pyarrow type of a Spark type name of RESULT_TYPES ("string", "double", "array<...>")."""
    import pyarrow

    if kind.startswith("array<"):
        return pyarrow.list_(arrow_type(kind[len("array<") : -1]))
    return {"string": pyarrow.string(), "double": pyarrow.float64()}[kind]


def counts(path):
    """{"predicted", "failed"}: the rows of the output directory `path` without, with an error."""
    files = sorted(
        entry.path
        for entry in os.scandir(path)
        if entry.is_file() and not entry.name.startswith(("_", "."))
    )
    if any(name.endswith(".parquet") for name in files):
        import pyarrow.parquet

        errors = pyarrow.parquet.read_table(path, columns=["error"]).column("error")
        total, failed = len(errors), len(errors) - errors.null_count
    else:
        total = failed = 0
        for name in files:
            with open(name, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        total += 1
                        failed += json.loads(line).get("error") is not None
    return {"predicted": total - failed, "failed": failed}
