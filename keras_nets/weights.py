"""Published ImageNet weights: the manifest, the download cache and loading into a model.

`weights_manifest.json` (repository top, installed inside the package) names every published file,
its URLs in the order they are tried, and its md5 where one is published. Downloads go through
`keras.utils.get_file`, so they land in the Keras cache, `$KERAS_HOME/models` (default
`~/.keras/models`), and a cached file is used without touching the network.
"""

import functools
import json
import os
import pathlib

import h5py
import keras

PACKAGED_MANIFEST = pathlib.Path(__file__).parent / "weights_manifest.json"


@functools.cache
def _read_manifest(path):
    with open(path) as f:
        return json.load(f)["models"]


def manifest():
    """{manifest key: {"top": entry, "notop": entry}}; KERAS_NETS_MANIFEST replaces the packaged one."""
    return _read_manifest(os.environ.get("KERAS_NETS_MANIFEST") or str(PACKAGED_MANIFEST))


def check_published(key, family):
    """A ValueError listing the published variants of `family` unless `key` is one of them."""
    if key in manifest():
        return
    variants = sorted(k for k in manifest() if k == family or k.startswith(family + "_"))
    raise ValueError(
        f"no published ImageNet weights for {key!r}; published {family} variants are: "
        f"{', '.join(variants) or 'none'}"
    )


def fetch(key, include_top=True):
    """The local path of the published weights file for manifest `key`, downloading it if needed."""
    check_published(key, family=key)
    entry = manifest()[key]["top" if include_top else "notop"]
    errors = []
    for url in entry["urls"]:
        try:
            return keras.utils.get_file(
                entry["file"], url, file_hash=entry.get("md5"), cache_subdir="models"
            )
        except Exception as error:  # noqa: BLE001 - every failure is reported together below
            errors.append(f"  {url}: {error}")
    raise RuntimeError(
        f"could not download {entry['file']}; tried:\n" + "\n".join(errors)
    )


def load_published_weights(model, key, include_top):
    load_weights_file(model, fetch(key, include_top))


def load_weights_file(model, path, by_name=False):
    """Loads a weights file into `model`, topologically (by layer order) unless `by_name`.

    Takes legacy Keras HDF5 files (the published `.h5` format) and Keras 3 `.weights.h5` files. A
    file that is not HDF5, or that belongs to another model, is a ValueError naming the file.
    """
    path = os.fspath(path)
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path} is not an HDF5 weights file (truncated or not a weights file)")
    if not path.endswith((".h5", ".hdf5")):
        raise ValueError(f"{path}: a weights file name must end in .h5 or .hdf5")
    try:
        model.load_weights(path, by_name=by_name) if by_name else model.load_weights(path)
    except ValueError as error:
        raise ValueError(
            f"the weights file {path} does not fit model {model.name!r}: {error}"
        ) from error
