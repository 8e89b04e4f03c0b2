"""Data-parallel training: on 2 devices, the same weights as on 1 with the same global batch.

No accelerators here: each backend runs in a subprocess with 2 simulated CPU devices, JAX through
XLA_FLAGS=--xla_force_host_platform_device_count=2, TensorFlow through two logical CPU devices.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from generated_data import make_dataset

pytestmark = pytest.mark.slow_file  # minutes: parallel runs start it first

TESTS = os.path.dirname(os.path.dirname(__file__))

# Runs in the subprocess: argv = [data_dir, output_dir]; prints one JSON line at the end.
SCRIPT = textwrap.dedent(
    """
    import contextlib, io, json, sys
    import keras
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from generated_data import SMALL_KWARGS, SMALL_MODEL
    from informative_weights import informative_classifier, random_images
    from keras_nets import distribution, finetune
    from keras_nets.cli import main

    class WhereTrainingRuns(keras.callbacks.Callback):
        # Records, at the first batch of every fit, the distribution in force and the devices
        # holding the first trainable weight: what a strategy that is only printed would miss.
        seen = []

        def on_train_begin(self, logs=None):
            self.recorded = False

        def on_train_batch_begin(self, batch, logs=None):
            if self.recorded:
                return
            self.recorded = True
            weight = self.model.trainable_weights[0].value
            if keras.backend.backend() == "tensorflow":
                strategy = tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
                replicas = strategy.num_replicas_in_sync if strategy else 1
                holders = {v.device for v in getattr(weight, "values", [weight])}
            else:
                active = keras.distribution.distribution()
                replicas = active.device_mesh.devices.size if active else 1
                holders = {str(d) for d in weight.sharding.device_set}
            self.seen.append({"replicas": replicas, "weight_devices": len(holders)})

    fit = keras.Model.fit  # every fit of this process, `keras-nets train`'s included, records

    def recorded_fit(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=[*(callbacks or []), WhereTrainingRuns()], **kwargs)

    keras.Model.fit = recorded_fit

    data_dir, output = sys.argv[1:]
    SIZE, CLASSES, BATCH = 32, 3, 8
    informative_classifier(SMALL_MODEL, CLASSES, SIZE, dropout=0.0, **SMALL_KWARGS).save_weights(
        f"{output}/start.weights.h5"
    )
    images = random_images(24, SIZE, seed=1)
    labels = np.arange(24) % CLASSES

    def trained_weights(strategy):
        keras.utils.set_random_seed(0)
        model = finetune.build_classifier(
            SMALL_MODEL, CLASSES, image_size=SIZE, weights=None, dropout=0.0,
            distribution=strategy, **SMALL_KWARGS
        )
        with contextlib.nullcontext() if strategy is None else strategy.scope():
            finetune.set_base_frozen(model, True)  # as a base with trained weights is
            model.load_weights(f"{output}/start.weights.h5")
            # Plain SGD: Adam's steps barely depend on the gradients' scale, SGD's are the scale.
            model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
            model.fit(images, labels, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
        return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]

    # The base is frozen, BatchNorm included (as fine-tuning keeps it), so the head trains, on
    # features that vary with the image.
    strategy = distribution.data_parallel(2)
    one, two = trained_weights(None), trained_weights(strategy)
    start = finetune.build_classifier(
        SMALL_MODEL, CLASSES, image_size=SIZE, weights=None, dropout=0.0, **SMALL_KWARGS
    )
    finetune.set_base_frozen(start, True)
    start.load_weights(f"{output}/start.weights.h5")
    moved = max(float(np.abs(a - b).max()) for a, b in zip(one, start.trainable_weights))
    difference = max(float(np.abs(a - b).max()) for a, b in zip(one, two))

    during_fits = list(WhereTrainingRuns.seen)
    WhereTrainingRuns.seen.clear()
    keras.backend.clear_session()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main([
            "train", data_dir, "--model", SMALL_MODEL, "--alpha", "0.35", "--size", str(SIZE),
            "--weights", "none", "--classes", "2", "--epochs", "1", "--batch", "4",
            "--output", f"{output}/run", "--distribute", "data-parallel",  # all devices: 2
        ])
    print(json.dumps({
        "moved": moved, "difference": difference, "status": status,
        "printed": printed.getvalue(), "used": distribution.device_names(strategy),
        "local": distribution.local_devices(), "during_fits": during_fits,
        "during_train": WhereTrainingRuns.seen,
    }))
    """
)


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_devices_train_the_same_weights_as_one(tmp_path, backend):
    data_dir = make_dataset(tmp_path / "data", train=4, validation=2, size=32)
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data_dir), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(set(result["used"])) == 2 and len(result["local"]) == 2
    # One device, then two: the distribution in force and the weight's copies, during each fit.
    assert result["during_fits"] == [
        {"replicas": 1, "weight_devices": 1},
        {"replicas": 2, "weight_devices": 2},
    ]
    assert result["moved"] > 1e-3  # training changed the weights ...
    assert result["difference"] < 1e-5 * max(1.0, result["moved"]) + 1e-6  # ... alike on 2 devices
    assert result["status"] == 0
    devices = ", ".join(result["used"])
    assert result["printed"].splitlines()[0] == f"training on 2 device(s): {devices}"
    # `keras-nets train --distribute data-parallel` without --devices: all (2), in force in fit.
    assert result["during_train"] == [{"replicas": 2, "weight_devices": 2}]
    assert (tmp_path / "run" / "model.keras").is_file()
