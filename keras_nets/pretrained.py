"""Moved to keras_nets.weights (manifest, cache, hdf5, download, loading); this old path keeps
working: every name of those modules is reachable here."""

from keras_nets.core import moved as _moved
from keras_nets.core import safe_files as _safe_files
from keras_nets.weights import cache as _cache
from keras_nets.weights import download as _download
from keras_nets.weights import hdf5 as _hdf5
from keras_nets.weights import loading as _loading
from keras_nets.weights import manifest as _manifest

_moved.forward(__name__, _manifest, _cache, _hdf5, _download, _loading, _safe_files)
