"""Moved to keras_nets.core.builder; this old path keeps working."""

from keras_nets.core import moved as _moved
from keras_nets.core import builder as _home

_moved.forward(__name__, _home)
