"""Moved to keras_nets.core.scores; this old path keeps working."""

from keras_nets.core import moved as _moved
from keras_nets.core import scores as _home

_moved.forward(__name__, _home)
