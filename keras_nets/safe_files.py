"""Moved to keras_nets.core.safe_files; this old path keeps working."""

from keras_nets.core import moved as _moved
from keras_nets.core import safe_files as _home

_moved.forward(__name__, _home)
