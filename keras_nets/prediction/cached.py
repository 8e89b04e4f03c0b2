"""The warm start of `keras-nets predict --fast`: a request answered from the compiled-model cache.

    key = request_key("mobilenet_v2", "imagenet", fast=True)   # None: nothing to look up
    run, transform, record = cached_model(key)                   # or None on a miss
    ...                                                          # a miss: build, compile, then
    remember(key, predictor)                                     # the next run finds it

A request is everything `Classifier.load` is given that decides the model's outputs: the registry
name and its arguments (alpha, size), the weights ("imagenet": the sha256 of the weights manifest,
which pins every published file; a `.h5` or `.keras` file, and the `class_names.json` beside a
`.keras`: the file's identity, `file_identity`), the crop, the precision and, for int8, the
identity of every calibration image file. Its entry (`keras_nets.inference.cache`) points at the
ONNX model and holds what else a prediction needs: the evaluation pipeline, the labels and the
weights' identity for a results file. A hit imports neither Keras nor a backend: ONNX Runtime,
numpy and PIL answer.
"""

import importlib.util
import os
import pathlib
import tempfile

from keras_nets.core import safe_files
from keras_nets.images.files import walk_images
from keras_nets.images.transforms import EvalTransform
from keras_nets.inference import cache
from keras_nets.inference.runtimes import thread_count

TRAINED_LABELS = "class_names.json"  # keras_nets.finetune.CLASS_NAMES_FILE, without Keras


def request_key(model, weights, fast, crop_pct=None, calibration=None, alpha=None, size=None):
    """The cache key of a `Classifier.load` request, or None when it is not one the cache keeps:
    not `fast`, random weights (`weights=None`: never seen again), or ONNX Runtime not installed
    (the warm start runs on it). Arguments as `Classifier.load` takes them; `model` already
    defaulted. A file that cannot be read gives None: the cold path then reports it properly."""
    if not fast or weights is None or importlib.util.find_spec("onnxruntime") is None:
        return None
    try:
        request = {
            "crop_pct": crop_pct,
            "precision": "float32" if calibration is None else "int8",
            "calibration": None if calibration is None else folder_identities(calibration),
        }
        if str(weights).endswith(".keras"):
            labels = pathlib.Path(weights).parent / TRAINED_LABELS
            request.update(kind="trained", file=file_identity(weights))
            request["labels"] = file_identity(labels)
        else:
            request.update(kind="registry", model=model, alpha=alpha, size=size)
            request["weights"] = weights_identity(weights)
    except (OSError, cache.CacheEntryError):
        return None
    return cache.request_key(request)


def weights_identity(weights):
    """ "imagenet" with the sha256 of the manifest that pins each published file, or a file's."""
    if weights == "imagenet":
        from keras_nets.weights import manifest

        return ["imagenet", cache.file_sha256(manifest.manifest_path())]
    return file_identity(weights)


def file_identity(path):
    """A file as the request names it: its real path, device, inode, size, and times of last
    modification and of last change. Any write to the file, or another file put in its place,
    changes the change time (which no program can set back), so the request then misses; the
    model entry, keyed by the weights' values, is found again if they are the same. Hashing the
    file instead would cost the warm start 0.1 s per 100 MB."""
    problem = safe_files.not_a_regular_file(path)
    if problem:
        raise cache.CacheEntryError(f"{path}: {problem}")
    info = os.stat(path)
    times = [info.st_mtime_ns, info.st_ctime_ns]
    return [os.path.realpath(path), info.st_dev, info.st_ino, info.st_size, *times]


def folder_identities(folder):
    """The `file_identity` of each image file of `folder`, in order."""
    if not os.path.isdir(folder):
        raise cache.CacheEntryError(f"{folder}: not a folder")
    return [file_identity(path) for path in sorted(walk_images(folder))]


def cached_model(key, threads=None):
    """(run, transform, record) of the request `key` from the cache, or None on a miss: `run`
    gives a batch's scores on ONNX Runtime, `transform` is the evaluation pipeline, `record` what
    `remember` stored (labels, identity, runtime).

    The model is the entry ONNX Runtime optimized for this CPU (`cache.optimized_key`) where
    there is one that passes its check; else the converted model, optimized now and the result
    stored for the next run."""
    from keras_nets.inference.runtimes import onnxruntime

    record = cache.load_request(key) if key else None
    if record is None:
        return None
    try:
        transform = EvalTransform(**record["transform"])
        model_key, threads = str(record["model_key"]), threads or thread_count()
        optimized = cache.load_model(cache.optimized_key(model_key))
        if optimized is not None:
            run = onnxruntime.compile_onnx(optimized, threads)
        else:
            run = optimize(model_key, threads, record.get("model_name"))
    except Exception:  # a record of another layout, a model ONNX Runtime refuses: a miss
        run = None
    if run is None:
        cache.remove_request(key)
        return None
    return (lambda batch: run(batch)[0]), transform, record


def optimize(model_key, threads, name=None):
    """A runner of the model entry `model_key` (None if it fails its check), its optimized
    graph stored as `cache.optimized_key(model_key)`; `name`: the model's, for the listing."""
    from keras_nets.inference.runtimes import onnxruntime

    converted = cache.load_model(model_key)
    if converted is None:
        return None
    with tempfile.TemporaryDirectory(prefix="keras-nets-ort-") as folder:
        path = os.path.join(folder, "optimized.onnx")
        run = onnxruntime.compile_onnx(converted, threads, optimized_to=path)
        try:
            with open(path, "rb") as f:
                description = {"model": f"{name} (optimized for this CPU)", "precision": None}
                cache.store_model(cache.optimized_key(model_key), f.read(), description)
        except OSError:  # not written: the next warm start optimizes again
            pass
    return run


def remember(key, predictor):
    """Stores the request `key` as answered by `predictor` (a fast Classifier whose model the
    cache holds); a cache that cannot be written costs only the next run's warm start."""
    if key is None or predictor.cache_key is None:
        return
    details = {
        "model_name": predictor.model_name,
        "classes": predictor.classes,
        "transform": dict(vars(predictor.transform)),
        "class_names": predictor.class_names,
        "runtime": predictor.runtime,
        "identity": predictor.identity,
    }
    try:
        cache.store_request(key, predictor.cache_key, details)
    except OSError:
        pass
