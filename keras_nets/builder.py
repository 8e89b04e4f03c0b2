"""Moved to keras_nets.core.builder; this old path keeps working."""

from keras_nets.core import builder as _home
from keras_nets.core import moved as _moved

_moved.forward(__name__, _home)
