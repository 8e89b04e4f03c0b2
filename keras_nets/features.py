"""Moved to keras_nets.core.features; this old path keeps working."""

from keras_nets.core import features as _home
from keras_nets.core import moved as _moved

_moved.forward(__name__, _home)
