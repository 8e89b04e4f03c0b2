"""Data parallelism on TensorFlow: `tf.distribute.MirroredStrategy` over local devices.

Variables are mirrored on each device, each global batch is split across them, and gradients are
all-reduced (summed, then divided by the global batch by Keras' loss scaling). The model must be
built and compiled inside `strategy.scope()`; `fit` then uses the model's own strategy.
"""

import tensorflow as tf


def local_devices():
    """GPUs if there are any, else the CPUs (logical ones included, as tests configure them)."""
    gpus = tf.config.list_logical_devices("GPU")
    return [device.name for device in (gpus or tf.config.list_logical_devices("CPU"))]


def data_parallel(count):
    devices = local_devices()[:count]
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy(devices=devices)
    # On CPUs, gradients are reduced on one device rather than by collective ops: the collective
    # instance keys of a second strategy in the same process collide with the first one's.
    reduction = tf.distribute.ReductionToOneDevice(reduce_to_device=devices[0])
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=reduction)


def devices(strategy):
    """Short names, e.g. "CPU:0", without the "/job:localhost/replica:0/task:0/device:" prefix."""
    return [name.rpartition("/device:")[2] for name in strategy.extended.worker_devices]
