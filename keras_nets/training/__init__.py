"""Training a classifier on folders of images, safely: what `keras-nets train` does, for Python.

    from keras_nets import training
    training.train_classifier("flowers/", "run/", base="mobilenet_v2", classes=5, epochs=10)

`training.run` is the run and its output (what is written where, and how safely), and
`training.datasets` the dataset (checked, listed and read as predict reads images); every name of
both is reachable here.
"""

from keras_nets.core import moved as _moved
from keras_nets.images.files import not_a_regular_file  # noqa: F401 - here before issue 24
from keras_nets.training import datasets as _datasets
from keras_nets.training import run as _run

_moved.forward(__name__, _run, _datasets)
