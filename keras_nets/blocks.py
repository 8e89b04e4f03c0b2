"""Moved to keras_nets.core.blocks; this old path keeps working."""

from keras_nets.core import blocks as _home
from keras_nets.core import moved as _moved

_moved.forward(__name__, _home)
