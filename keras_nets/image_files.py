"""Moved to keras_nets.images.files; this old path keeps working."""

from keras_nets.core import moved as _moved
from keras_nets.images import files as _home

_moved.forward(__name__, _home)
