"""TensorFlow: the model as one compiled `tf.function`; there whenever Keras runs on TensorFlow.

The only module of the package that imports TensorFlow itself, inside `compile`.
"""

import importlib.util

import keras
import numpy as np

NAME = "tensorflow"
EXTRA = None  # a default dependency of keras-nets


def is_installed():
    return (
        keras.backend.backend() == "tensorflow"
        and importlib.util.find_spec("tensorflow") is not None
    )


def compile(model, threads):
    """`threads` is not used: TensorFlow sizes its thread pools once per process, at start."""
    import tensorflow as tf

    tensor = model.inputs[0]
    function = tf.function(
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype, name="images")],
        autograph=False,
    )

    def run(batch):
        return [np.asarray(y) for y in keras.tree.flatten(function(batch))]

    return run
