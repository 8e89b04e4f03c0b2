"""Moved to keras_nets.core.registry (storing and listing configs) and keras_nets.core.factory
(collecting and building the models); this old path keeps working."""

from keras_nets.core import factory as _factory
from keras_nets.core import moved as _moved
from keras_nets.core import registry as _registry

_moved.forward(__name__, _registry, _factory)
