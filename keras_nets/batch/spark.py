"""Spark: a DataFrame of predictions for the image files of folders, or of a DataFrame of files.

    from keras_nets.batch import spark
    session = spark.local_session(cores=2)                        # or your own SparkSession
    predictions = spark.predict_spark(["photos/"], model="mobilenet_v2", spark=session)
    predictions.write.parquet("predictions.parquet")

Built on `mapInPandas`: each Python worker unpickles one `Predictor`, which loads the model once
per worker process (Spark reuses its Python workers), and maps each Arrow batch of (path,
content) rows to SCHEMA's columns. Files are read by Spark's `binaryFile` source, so on a cluster
every executor must see the paths (HDFS, S3, a shared file system). Imported only when used:
pyspark is the `[spark]` extra.
"""

import os
import sys

from keras_nets.batch.predictor import PATH, RESULT_TYPES, Predictor
from keras_nets.images.files import IMAGE_EXTENSIONS

COLUMNS = [PATH, *RESULT_TYPES]
SCHEMA = ", ".join(f"{name} {kind}" for name, kind in {PATH: "string", **RESULT_TYPES}.items())
# Rows per Arrow batch handed to a Python worker in `local_session` (Spark's default is 10,000):
# each row holds a whole image file, so 10,000 photos of 5 MB would be 50 GB in one worker.
ROWS_PER_ARROW_BATCH = 256
# The files `binaryFile` reads: the extensions `keras-nets predict` walks folders for, in lower and
# upper case (a Hadoop glob is case-sensitive).
IMAGE_GLOB = (
    "*.{"
    + ",".join(e[1:] for e in IMAGE_EXTENSIONS + tuple(map(str.upper, IMAGE_EXTENSIONS)))
    + "}"
)


def local_session(cores=None, app_name="keras-nets"):
    """A Spark session on this machine (`local[cores]`, default all), listening on 127.0.0.1 only,
    with no web UI; its Python workers run this interpreter. An active session is returned as it
    is (Spark keeps one per process)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return (
        SparkSession.builder.master(f"local[{cores or '*'}]")
        .appName(app_name)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ROWS_PER_ARROW_BATCH))
        .getOrCreate()
    )


def image_files(spark, inputs):
    """A DataFrame (path, content) of the image files in `inputs` (folders, read recursively, and
    files; Spark's paths or URIs): Spark's `binaryFile` source."""
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    reader = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", IMAGE_GLOB)
    )
    return reader.load([os.fspath(item) for item in inputs]).select(PATH, "content")


def predict_spark(source, predictor=None, *, spark=None, partitions=None, **settings):
    """A DataFrame of SCHEMA: for each image file, its path, best class and score, the `top` best
    (labels, scores, WordNet ids) and `error` (None, or why the file could not be read).

    Args:
      source: a Spark DataFrame with `path` and `content` columns (`binaryFile`'s), or folders and
        files to read (`image_files`).
      predictor: a `Predictor`; or give its settings as keywords (`model=`, `weights=`, `top=`...).
      spark: the SparkSession to read `source` with (default: the active one, else
        `local_session()`).
      partitions: repartition the files into this many tasks first (default: as Spark splits
        them, about 128 MB of files per task).

    Lazy, as Spark is: nothing runs until the DataFrame is written, collected or counted.
    """
    predictor = predictor if predictor is not None else Predictor(**settings)
    if hasattr(source, "mapInPandas"):
        files = source.select(PATH, "content")
    else:
        from pyspark.sql import SparkSession

        spark = spark or SparkSession.getActiveSession() or local_session()
        files = image_files(spark, source)
    if partitions is not None:
        files = files.repartition(partitions)

    def predict_batches(frames):
        for frame in frames:
            yield predictor(frame)[COLUMNS]

    return files.mapInPandas(predict_batches, SCHEMA)
