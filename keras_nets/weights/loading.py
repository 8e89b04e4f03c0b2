"""Loading weights into a model: the published file of a manifest key, or a file of your own."""

import math
import os
import warnings

import h5py

from keras_nets.weights import download
from keras_nets.weights.cache import _remove_quietly, downloaded_here, sha256_record
from keras_nets.weights.hdf5 import hdf5_problem, keras3_weights_file, weighted_layer_names
from keras_nets.weights.manifest import entry, published_hash


def load_published_weights(model, key, include_top):
    """Loads the published weights of manifest `key` into `model`, fetching them if needed.

    A file with no published md5 that does not fit the model is not the published file: removed
    from the cache when keras-nets downloaded it (`downloaded_here`), so that the next use
    downloads it again; left as it is otherwise (copied by hand: the user's), and reported.
    """
    path = download.fetch(key, include_top)
    try:
        if keras3_weights_file(path):  # the published files are all legacy Keras HDF5 files
            raise ValueError(
                f"the weights file {path} is a Keras 3 .weights.h5 file (as model.save_weights "
                f"writes), another format than the published {key!r} file of that name (a legacy "
                "Keras HDF5 weights file)"
            )
        load_weights_file(model, path)
    except ValueError as error:
        if published_hash(entry(key, include_top)) is None:
            name = os.path.basename(path)
            if downloaded_here(path):
                os.remove(path)
                _remove_quietly(sha256_record(path))
                raise ValueError(
                    f"{error}\nNo md5 is published for {name}, and this copy, downloaded by "
                    "keras-nets, does not fit the model it was fetched for, so it was removed "
                    "from the cache; the next use downloads it again."
                ) from error
            raise ValueError(
                f"{error}\nNo md5 is published for {name}, and this copy does not fit the model; "
                "keras-nets did not download it (copied by hand?), so it is left in the cache as "
                "it is: move it away and the next use downloads the published file."
            ) from error
        raise ValueError(
            f"{error}\n{path} is the published {key!r} file (include_top={include_top}), "
            f"{published_hash(entry(key, include_top))[0]} checked: the model's arguments do not "
            "select that variant."
        ) from error


def load_weights_file(model, path, by_name=False):
    """Loads a weights file into `model`, topologically (by layer order) unless `by_name`.

    Takes legacy Keras HDF5 files (the published `.h5` format, also whole-model `.h5` files, of
    which only the weights are read) and Keras 3 `.weights.h5` files. A file that is not HDF5, is
    truncated, or belongs to another model or variant is a one-line ValueError naming the file and
    model (layer counts or weight shapes are compared first; Keras' own error is cut to its first
    line and its warnings, one per skipped layer, become a single one).
    """
    path = os.fspath(path)
    problem = hdf5_problem(path)
    if problem:
        raise ValueError(f"the weights file {path} is {problem}")
    if not path.endswith((".h5", ".hdf5")):
        raise ValueError(f"{path}: a weights file name must end in .h5 or .hdf5")
    ours = [layer.name for layer in model.layers if layer.weights]
    with h5py.File(path, "r") as f:
        theirs = weighted_layer_names(f)
        shapes = None if theirs is not None else _weight_shapes(f)
    mismatch = f"the weights file {path} does not fit model {model.name!r}"
    kind = "It holds" if theirs is not None else "It is a Keras 3 .weights.h5 file, with"
    hint = (
        f"{kind} the weights of another model or variant (or of the same model with the other "
        "include_top)."
    )
    if theirs is not None and not by_name and len(theirs) != len(ours):
        raise ValueError(
            f"{mismatch}: the file has {len(theirs)} layers with weights "
            f"({_span(theirs)}), the model {len(ours)} ({_span(ours)}). {hint}"
        )
    model_shapes = sorted(tuple(weight.shape) for weight in model.weights)
    if shapes is not None and shapes != model_shapes:  # a Keras 3 .weights.h5 file
        raise ValueError(
            f"{mismatch}: the file has {len(shapes)} weights ({_values(shapes)} values), the "
            f"model {len(model_shapes)} ({_values(model_shapes)} values). {hint}"
        )
    with warnings.catch_warnings(record=True) as caught:  # Keras warns once per layer it skips
        warnings.simplefilter("always")
        try:
            model.load_weights(path, by_name=True) if by_name else model.load_weights(path)
        except ValueError as error:
            raise ValueError(f"{mismatch}: {_first_line(error)}. {hint}") from None
    if caught:
        warnings.warn(
            f"loading {path} into model {model.name!r}, Keras warned {len(caught)} time(s); the "
            f"first: {_first_line(caught[0].message)}",
            stacklevel=2,
        )


def _weight_shapes(h5file):
    """The sorted shapes of every weight in a Keras 3 `.weights.h5` file."""
    shapes = []
    h5file.visititems(
        lambda name, item: (
            shapes.append(tuple(item.shape))
            if isinstance(item, h5py.Dataset) and "/vars/" in f"/{name}"
            else None
        )
    )
    return sorted(shapes)


def _values(shapes):
    return f"{sum(math.prod(shape) for shape in shapes):,}"


def _first_line(message, limit=300):
    """The first line of a message, cut at `limit` characters (Keras' can hold whole arrays)."""
    line = str(message).strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit] + " ..."


def _span(names):
    return f"{names[0]} ... {names[-1]}" if names else "none"
