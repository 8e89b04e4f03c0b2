"""Dask: a Dask DataFrame of predictions for the image files of folders.

    from dask.distributed import Client, LocalCluster
    from keras_nets.batch import dask
    client = Client(LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1"))
    predictions = dask.predict_dask(["photos/"], model="mobilenet_v2").compute()

The folders are listed here, in the client (`keras-nets predict`'s walk: sorted, hidden files
skipped); each partition of paths goes to a worker, which reads the files itself, so on a cluster
every worker must see the paths. One `Predictor` is mapped over the partitions: the model loads
once per worker process. Runs on the default Dask client (the last one made), or Dask's local
scheduler without one. Imported only when used: dask is the `[dask]` extra.
"""

import math
import os

import numpy as np

from keras_nets.batch.predictor import PATH, RESULT_COLUMNS, Predictor, column

FILES_PER_PARTITION = 256  # a task: enough images that the model's batches stay full


def image_paths(inputs):
    """The image files of `inputs` (a folder or file, or a list of them; folders walked as
    `keras-nets predict` walks them, files as given), as absolute paths; a ValueError naming an
    input that does not exist."""
    from keras_nets.prediction.folders import image_name, iter_sources

    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs
    missing = []
    paths = [image_name(source) for source in iter_sources(inputs, missing)]
    if missing:
        raise ValueError(f"inputs={missing[0]!r}: no such file or directory")
    return paths


def predict_dask(inputs, predictor=None, *, files_per_partition=FILES_PER_PARTITION, **settings):
    """A Dask DataFrame (lazy) of `path` and the Predictor's RESULT_COLUMNS, one row per image.

    Args:
      inputs: folders and image files (a folder that cannot be listed is a row with its error).
      predictor: a `Predictor`; or give its settings as keywords (`model=`, `weights=`, `top=`...).
      files_per_partition: images per task, at most; a small folder is split so that each
        worker of the default client gets some.
    """
    import dask.dataframe
    import pandas

    predictor = predictor if predictor is not None else Predictor(**settings)
    paths = pandas.DataFrame({PATH: np.asarray(image_paths(inputs), dtype=object)})
    # at least a partition per worker, or a small folder would keep all but one idle
    partitions = max(math.ceil(len(paths) / files_per_partition), worker_count(), 1)
    frame = dask.dataframe.from_pandas(paths, npartitions=partitions, sort=False)
    meta = paths.iloc[:0].assign(
        **{
            name: pandas.Series(column(name, []), dtype=column(name, []).dtype)
            for name in RESULT_COLUMNS
        }
    )
    return frame.map_partitions(predictor, meta=meta)


def worker_count():
    """The workers of the default Dask client; 1 without one."""
    try:
        from distributed import default_client

        return len(default_client().scheduler_info(n_workers=-1)["workers"])
    except (ImportError, ValueError):
        return 1
