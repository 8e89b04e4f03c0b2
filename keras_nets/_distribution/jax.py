"""Data parallelism on JAX: Keras' distribution API, `keras.distribution.DataParallel`.

Variables are replicated on every device of a one-axis mesh, and each batch is split along that
axis; JAX averages the gradients across devices inside the compiled train step. Fitting needs
the distribution active as well as building (Keras shards each batch by the distribution active
during `fit`), hence one scope around both.
"""

import keras


def local_devices():
    return keras.distribution.list_devices()


def data_parallel(count):
    return keras.distribution.DataParallel(devices=local_devices()[:count])


def devices(strategy):
    return [str(device) for device in strategy.device_mesh.devices.flatten()]
