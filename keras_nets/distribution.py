"""Training the same model on several local devices: data parallelism, as the backend does it.

    from keras_nets import distribution, finetune
    strategy = distribution.data_parallel()          # every local device (or data_parallel(2))
    model = finetune.build_classifier("mobilenet_v2", classes=5, distribution=strategy)
    with strategy.scope():                           # JAX shards the batches of the fit in scope
        model.fit(train, epochs=10)                  # the global batch is split across devices

On JAX this is Keras' distribution API (`keras.distribution.DataParallel` over a one-axis
`DeviceMesh`); on TensorFlow `tf.distribute.MirroredStrategy`. Both keep one copy of the weights
per device, split each batch of the dataset (the *global* batch) evenly across the devices and
average the gradients, so one step on N devices is one step on one device with the same global
batch. The backend's own code lives in `keras_nets._distribution.<backend>`, imported lazily.

Several hosts (JAX): run the same script on every host (not `keras-nets train`), calling first
`keras.distribution.initialize(job_addresses, num_processes, process_id)` with the coordinator's
"host:port" (process 0's), the number of processes and this host's index (on Cloud TPU and
SLURM clusters JAX finds these itself: `keras.distribution.initialize()`); `data_parallel()` then
spans the devices of every host, and each host feeds its own share of every global batch. See
https://keras.io/guides/distribution/. On TensorFlow, several hosts need
`tf.distribute.MultiWorkerMirroredStrategy` and a TF_CONFIG per host, which this module does not
set up.
"""

import importlib

BACKENDS = ("jax", "tensorflow")
DATA_PARALLEL = "data-parallel"


def backend_module():
    import keras

    backend = keras.backend.backend()
    if backend not in BACKENDS:
        raise ValueError(
            f"distribute={DATA_PARALLEL!r} on the Keras backend {backend!r}: expected one of "
            f"{', '.join(BACKENDS)} (set KERAS_BACKEND)"
        )
    return importlib.import_module(f"keras_nets._distribution.{backend}")


def local_devices():
    """The names of the devices `data_parallel` can use here (accelerators if any, else CPUs)."""
    return backend_module().local_devices()


def data_parallel(devices=None):
    """A data-parallel strategy over the first `devices` local devices (default: all of them).

    Args:
      devices: how many devices, at least 1 and at most `len(local_devices())`.

    Returns:
      A `keras.distribution.DataParallel` (JAX) or `tf.distribute.MirroredStrategy` (TensorFlow):
      build, compile and fit the model inside its `.scope()`.
    """
    module = backend_module()
    available = module.local_devices()
    if devices is None:
        devices = len(available)
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        raise ValueError(f"devices={devices!r}: expected a positive integer")
    if devices > len(available):
        raise ValueError(
            f"devices={devices}: expected at most {len(available)}, the local devices "
            f"({', '.join(available)})"
        )
    return module.data_parallel(devices)


def device_names(strategy):
    """The names of the devices a strategy from `data_parallel` trains on."""
    return backend_module().devices(strategy)
