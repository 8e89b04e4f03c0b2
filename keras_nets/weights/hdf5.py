"""Reading HDF5 weights files without loading them: is a file complete, which layers has it.

Weights files are only ever read with `model.load_weights`, never loaded as whole models, so no
configuration or code inside a downloaded file is deserialised.
"""

import h5py

from keras_nets.core.safe_files import is_regular_file

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def hdf5_problem(path):
    """Why `path` is not a complete Keras HDF5 weights file, or None if it is one."""
    if not is_regular_file(path):
        return "not a regular file"
    with open(path, "rb") as f:
        head = f.read(16)
    if not head.startswith(HDF5_SIGNATURE):
        return f"not an HDF5 file (it starts with {head!r}; an error page or a different format?)"
    try:
        with h5py.File(path, "r") as f:
            if weighted_layer_names(f) is None and "layers" not in f:
                return "an HDF5 file but not a Keras weights file"
    except (OSError, KeyError) as error:
        return f"a truncated or damaged HDF5 file ({error})"
    return None


def keras3_weights_file(path):
    """Whether `path` is a Keras 3 `.weights.h5` file (`model.save_weights`'s format, whatever
    its name), not a legacy Keras HDF5 weights file."""
    with h5py.File(path, "r") as f:
        return weighted_layer_names(f) is None and "layers" in f


def weighted_layer_names(h5file):
    """The names of the layers with weights in a legacy Keras HDF5 file, in order; else None."""
    group = h5file
    if _attribute(group, "layer_names") is None and "model_weights" in group:
        group = group["model_weights"]  # a whole-model file: only its weights are ever read
    names = _attribute(group, "layer_names")
    if names is None:
        return None
    return [name for name in names if _attribute(group[name], "weight_names")]


def _attribute(group, name):
    """A list-of-names attribute, which Keras splits into name0, name1, ... when it is large."""
    if name in group.attrs:
        values = list(group.attrs[name])
    elif f"{name}0" in group.attrs:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values += list(group.attrs[f"{name}{chunk}"])
            chunk += 1
    else:
        return None
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]
