"""The compiled-model cache: the ONNX models `compile_for_inference` converted (and quantized),
kept under `$KERAS_HOME/keras_nets/compiled` so that the next run skips the conversion.

    keras-nets cache list      # each entry: its size, when last used, what it is
    keras-nets cache clear     # removes them (only files this cache wrote)

Two kinds of entry live there:

  model entries    `<key>.onnx` and its record `<key>.json`. The key (`model_key`) is a sha256 of
                   everything the ONNX model depends on: the Keras model's config (its layer
                   names numbered, since Keras numbers automatic names per session), the sha256 of
                   its weights' values, the precision, for int8 the calibration images' bytes, the
                   Keras backend, and the versions of keras-nets, Keras, the converters and ONNX
                   Runtime (VERSIONED). The record holds the ONNX file's sha256. int8 is the
                   float32 entry quantized: compiling for it takes that entry, or stores the
                   conversion there first.
  request entries  `request-<key>.json`: what `keras-nets predict --fast` was asked (model name,
                   alpha, size, crop, the weights file's sha256, precision, the calibration files'
                   sha256s: `keras_nets.prediction.cached`), pointing at a model entry, with the
                   pipeline and the labels. A second run with the same request finds its model
                   without building it, and without importing Keras or a backend.

An entry is used only if its ONNX file has the sha256 its record holds: one that fails that check
(a flipped byte, a cut-short file) is removed and rebuilt, never trusted. Files appear whole under
their names (`safe_files.atomic_path`; the ONNX file before its record, so a record always has its
file). A key that changes with the versions makes an entry of older software unreachable: it is
rebuilt, and the old one leaves when the cache passes MAX_CACHE_BYTES (least recently used first)
or with `keras-nets cache clear`. Importing this module imports neither Keras nor ONNX Runtime.
"""

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import time

from keras_nets.core import safe_files
from keras_nets.weights.cache import keras_home

# What a key's versions name: the packages whose change can change a converted model.
VERSIONED = ("keras-nets", "keras", "numpy", "onnx", "tf2onnx", "onnxruntime", "jax2onnx", "torch")
# The cache's size bound: past it, the least recently used model entries leave (VGG19's float32
# ONNX is 549 MB, Xception's 88 MB).
MAX_CACHE_BYTES = 4 * 2**30
MODEL_NAME = re.compile(r"[0-9a-f]{64}\.(onnx|json)")
REQUEST_NAME = re.compile(r"request-[0-9a-f]{64}\.json")


class CacheEntryError(ValueError):
    """A cache entry that cannot be trusted: missing, unreadable or not what its record says."""


def cache_dir():
    """`$KERAS_HOME/keras_nets/compiled`, read at each call (a test or a command may move it)."""
    return os.path.join(keras_home(), "keras_nets", "compiled")


@functools.cache
def versions():
    """{package: installed version or None} for VERSIONED, read without importing them."""
    found = {}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def digest_of(value):
    """The sha256 (hex) of a JSON-ready value, keys sorted: the same value, the same digest."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path):
    """The sha256 (hex) of a regular file's bytes, read in blocks."""
    problem = safe_files.not_a_regular_file(path)
    if problem:
        raise CacheEntryError(f"{path}: {problem}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(model):
    """The sha256 (hex) of a Keras model's weights as loaded: each array's dtype, shape and bytes,
    in the model's order (whatever file they came from)."""
    import numpy as np

    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def canonical_config(model):
    """`model.get_config()` with each layer's name replaced by its position: two builds of one
    network in one session differ only in Keras' automatic names ("input_layer_3")."""
    names = {layer.name: f"layer-{i}" for i, layer in enumerate(model.layers)}
    names[model.name] = "model"

    def rename(value):
        if isinstance(value, str):
            return names.get(value, value)
        if isinstance(value, dict):
            return {key: rename(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [rename(item) for item in value]
        return value

    return rename(model.get_config())


def model_key(model, precision, calibration=None):
    """The key of `model`'s converted form: see the module's docstring for what it covers.

    Args:
      model: the Keras model before folding (folding is deterministic).
      precision: "float32" or "int8".
      calibration: the int8 calibration images as the model takes them (a numpy array), or None.
    """
    import keras

    images = None
    if calibration is not None:
        images = [str(calibration.dtype), list(calibration.shape)]
        images.append(hashlib.sha256(calibration.tobytes()).hexdigest())
    return digest_of(
        {
            "config": canonical_config(model),
            "weights": weights_sha256(model),
            "precision": precision,
            "calibration": images,
            "backend": keras.backend.backend(),
            "versions": versions(),
        }
    )


@functools.cache
def cpu_signature():
    """The CPU's architecture and instruction sets (/proc/cpuinfo's flags where there is one):
    what ONNX Runtime's optimized graphs depend on."""
    import platform

    flags = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        flags = next((line for line in f if line.startswith("flags")), "")
    return [platform.machine(), platform.processor(), sorted(flags.partition(":")[2].split())]


def optimized_key(key):
    """The key of the model entry `key` as ONNX Runtime optimized it for this CPU: its graph
    with the layouts and fused kernels chosen for these instruction sets, which loads in half the
    time (Xception: 0.19 s instead of 0.39 s here) but only runs where it was made."""
    return digest_of({"optimized": key, "cpu": cpu_signature(), "versions": versions()})


def request_key(request):
    """The key of a request entry: `request` (a JSON-ready dict) and the versions."""
    return digest_of({"request": request, "versions": versions()})


def _path(name):
    return os.path.join(cache_dir(), name)


def _read_record(path):
    """A record's dict, or None when it is missing, not a regular file or not JSON."""
    if not safe_files.is_regular_file(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def load_model(key):
    """The ONNX bytes of the model entry `key`, or None if there is none that can be trusted (a
    damaged one is removed: the caller converts again and stores the result)."""
    record = _read_record(_path(f"{key}.json"))
    if record is None:
        return None
    onnx_path = _path(f"{key}.onnx")
    try:
        if not safe_files.is_regular_file(onnx_path):
            raise CacheEntryError(f"{onnx_path}: missing")
        with open(onnx_path, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != record.get("sha256"):
            raise CacheEntryError(f"{onnx_path}: not the sha256 its record holds")
    except (OSError, CacheEntryError):
        remove_model(key)
        return None
    with contextlib.suppress(OSError):
        os.utime(onnx_path)  # last used: what the size bound evicts by
    return data


def store_model(key, data, description):
    """Stores ONNX bytes as the model entry `key`; `description` (a JSON-ready dict) says what
    it is, for `keras-nets cache list`. A cache that cannot be written (read-only home, disk
    full) only costs the next run its conversion: OSError is left to the caller to report."""
    os.makedirs(cache_dir(), exist_ok=True)
    with safe_files.atomic_path(_path(f"{key}.onnx")) as partial, open(partial, "wb") as f:
        f.write(data)
    record = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions(),
        **description,
    }
    safe_files.write_json(_path(f"{key}.json"), record)
    evict(keep=key)


def remove_model(key):
    """Removes the model entry `key` (its record first: no record is left without its file)."""
    for name in (f"{key}.json", f"{key}.onnx"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(_path(name))


def load_request(key):
    """The record of the request entry `key` (its "model_key" names the model entry), or None."""
    return _read_record(_path(f"request-{key}.json"))


def remove_request(key):
    with contextlib.suppress(FileNotFoundError):
        os.remove(_path(f"request-{key}.json"))


def store_request(key, model_key, details):
    """Stores the request entry `key`, pointing at the model entry `model_key`, with `details`
    (the pipeline, labels and identity a prediction needs beside the ONNX model)."""
    os.makedirs(cache_dir(), exist_ok=True)
    safe_files.write_json(_path(f"request-{key}.json"), {"model_key": model_key, **details})


def entries():
    """The cache's entries, model entries first then requests: one dict each, with "kind",
    "key", "bytes", "last_used" (seconds since the epoch) and its record's description."""
    folder = cache_dir()
    if not os.path.isdir(folder):
        return []
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_file(follow_symlinks=False):
            continue
        if MODEL_NAME.fullmatch(entry.name) and entry.name.endswith(".onnx"):
            key = entry.name[: -len(".onnx")]
            record = _read_record(_path(f"{key}.json")) or {}
            info = entry.stat()
            found.append(
                {"kind": "model", "key": key, "bytes": info.st_size, "last_used": info.st_mtime}
                | {name: record.get(name) for name in ("model", "precision", "created")}
            )
        elif REQUEST_NAME.fullmatch(entry.name):
            record = _read_record(entry.path) or {}
            found.append(
                {
                    "kind": "request",
                    "key": entry.name[len("request-") : -len(".json")],
                    "bytes": entry.stat().st_size,
                    "last_used": entry.stat().st_mtime,
                    "model": record.get("model_name"),
                    "model_key": record.get("model_key"),
                }
            )
    return sorted(found, key=lambda item: item["kind"])


def clear():
    """Removes every entry (only names this cache writes; anything else there stays). Returns
    (files removed, bytes freed)."""
    folder = cache_dir()
    if not os.path.isdir(folder):
        return 0, 0
    count = freed = 0
    for entry in os.scandir(folder):
        ours = MODEL_NAME.fullmatch(entry.name) or REQUEST_NAME.fullmatch(entry.name)
        if ours and entry.is_file(follow_symlinks=False):
            size = entry.stat().st_size
            with contextlib.suppress(FileNotFoundError):
                os.remove(entry.path)
                count, freed = count + 1, freed + size
    return count, freed


def evict(keep=None, limit=None):
    """Removes the least recently used model entries while the cache holds more than `limit`
    bytes (MAX_CACHE_BYTES), never `keep`; request entries pointing at them then miss."""
    limit = MAX_CACHE_BYTES if limit is None else limit
    models = [item for item in entries() if item["kind"] == "model"]
    total = sum(item["bytes"] for item in models)
    for item in sorted(models, key=lambda item: item["last_used"]):
        if total <= limit:
            break
        if item["key"] != keep:
            remove_model(item["key"])
            total -= item["bytes"]
