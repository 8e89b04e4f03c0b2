"""Batch inference beyond one process: the same models, pipeline and answers as `keras-nets
predict`, on Spark, Dask or Ray.

    from keras_nets.batch import Predictor, predict_spark, predict_dask
    predict_spark(["photos/"], model="mobilenet_v2").write.parquet("out.parquet")       # Spark
    predict_dask(["photos/"], model="mobilenet_v2").to_parquet("out.parquet")           # Dask
    ray.data.read_binary_files("photos/", include_paths=True).map_batches(               # Ray Data
        Predictor, fn_constructor_kwargs={"model": "mobilenet_v2"}, concurrency=2)

  predictor  Predictor: picklable settings; loads the model once per worker process and maps a
             batch of image files (Ray's dict of numpy arrays, or a pandas DataFrame) to their
             classes, a file that cannot be read to its error.
  spark      predict_spark (mapInPandas over `binaryFile`), local_session (127.0.0.1 only).
  dask       predict_dask: the Predictor mapped over partitions of paths, on the default client.
  writing    write_predictions: `keras-nets predict --engine spark|dask --output OUT`.

Importing it imports neither Keras nor an engine: pyspark and dask are the `[spark]` and `[dask]`
extras, imported when used (docs/guides/batch-inference.md).
"""

from keras_nets.batch.dask import predict_dask
from keras_nets.batch.predictor import RESULT_COLUMNS, Predictor
from keras_nets.batch.spark import local_session, predict_spark
from keras_nets.batch.writing import write_predictions

__all__ = [
    "RESULT_COLUMNS",
    "Predictor",
    "local_session",
    "predict_dask",
    "predict_spark",
    "write_predictions",
]
