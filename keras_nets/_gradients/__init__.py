"""The gradient of a function of one tensor, on the active Keras backend: one module per backend.

Each module defines `gradient(fn, x) -> (dfn/dx, aux)` for `fn(x) -> (scalar, aux)`, and is
imported only when that backend is the active one (TensorFlow is never imported under JAX).
"""

import importlib

import keras

BACKENDS = ("tensorflow", "jax", "torch")


def gradient(fn, x):
    """The gradient of `fn`'s scalar output with respect to `x`, and `fn`'s auxiliary output."""
    backend = keras.backend.backend()
    if backend not in BACKENDS:
        raise ValueError(f"Keras backend {backend!r}: gradients need one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"keras_nets._gradients.{backend}").gradient(fn, x)
