"""Moved to keras_nets.images.transforms (the evaluation transforms) and keras_nets.core.factory
(`with_preprocessing`); this old path keeps working."""

from keras_nets.core import factory as _factory
from keras_nets.core import moved as _moved
from keras_nets.images import transforms as _transforms

_moved.forward(__name__, _transforms, _factory)
