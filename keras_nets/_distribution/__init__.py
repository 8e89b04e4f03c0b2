"""Data-parallel training over local devices, on the active Keras backend: one module per backend.

Each module defines `data_parallel(count) -> strategy` (an object with `.scope()`, under which
the model is built, compiled and fitted) and `devices(strategy) -> [device name, ...]`. It is
imported only when its backend is the active one (TensorFlow is never imported under JAX).
The public entry points are in `keras_nets.distribution`.
"""
