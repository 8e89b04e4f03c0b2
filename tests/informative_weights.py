"""Weights whose outputs depend on the input, for every test that compares predictions.

A randomly initialised network is useless for such a test: its activations vanish through the
layers (MobileNetV2's logits spread by ~1e-12), so its softmax is uniform whatever the image, and
a broken preprocessing, a lost head or zeros fed to the fast path would all still "match". Here
every BatchNormalization layer gets the statistics of its own input on a batch of random images
(activations neither vanish nor explode), and the classifier layer a random kernel scaled so its
logits spread by a few units. `assert_informative` is the guard: a test that compares outputs
calls it (the helpers here do) and fails if the outputs are (near) constant across inputs.
"""

import keras
import numpy as np

import keras_nets
from keras_nets import finetune

CALIBRATION_IMAGES = 8
MIN_SPREAD = 1e-2  # smallest acceptable std of an output across inputs (probabilities or logits)


def random_images(count, size, seed=0):
    """Images as unlike each other as photos: each its own tint, gradient, and amount of noise.

    (Plain uniform noise would not do: after global pooling every noise image looks the same,
    and weights calibrated on them saturate on real pictures.)
    """
    height, width = size if isinstance(size, tuple) else (size, size)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    images = []
    for _ in range(count):
        tint = rng.uniform(0, 255, 3)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * x + np.sin(angle) * y)[..., None] * rng.uniform(-255, 255, 3)
        noise = rng.normal(0, rng.uniform(0, 60), (height, width, 3))
        images.append(np.clip(tint + ramp + noise, 0, 255))
    return np.array(images, dtype="float32")


def calibrate_batch_norm(model, preprocessed_images):
    """One training-mode pass with momentum 0 sets each BatchNorm's moving statistics.

    Frozen layers run in inference mode whatever `training` says, so every layer is made
    trainable for the pass, one by one (`model.trainable = True` does not reach the layers of a
    functional model that `features.unfreeze_from` froze), and restored afterwards (the model
    itself first, then its layers).
    """
    layers = list(model._flatten_layers(include_self=True))
    trainable = [layer.trainable for layer in layers]
    batch_norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in batch_norms]
    for layer in layers:
        layer.trainable = True
    for layer in batch_norms:
        layer.momentum = 0.0
    model(preprocessed_images, training=True)
    for layer, momentum in zip(batch_norms, momenta):
        layer.momentum = momentum
    for layer, flag in zip(layers, trainable):
        layer.trainable = flag


def assert_informative(outputs, what="outputs"):
    """Fails unless `outputs` (one row per input) vary across the inputs."""
    outputs = np.asarray(outputs, dtype="float64").reshape(len(outputs), -1)
    spread = outputs.std(axis=0).max()
    relative = spread / max(np.abs(outputs).max(), 1e-30)
    assert relative > MIN_SPREAD, (
        f"{what} barely depend on the input (relative spread {relative:.2e}): a test comparing "
        "them could not fail"
    )


def scale_classifier(layer, features, target_std=3.0, seed=0):
    """A random Dense kernel and bias whose logits, on these features, are centred per class and
    spread by about `target_std`: no class wins whatever the input, the input decides."""
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal(kernel.shape)
    features = np.asarray(features, dtype="float64")
    logits = features @ kernel
    scale = target_std / max((logits - logits.mean(axis=0)).std(), 1e-30)
    bias = -logits.mean(axis=0) * scale
    layer.set_weights([(kernel * scale).astype("float32"), bias.astype("float32")])


def informative_model(name, input_size=None, **kwargs):
    """`create_model(name, weights=None, **kwargs)` made informative (1000-class top included).

    `input_size` (default: the model's own) is the size calibrated at; a network that pools
    globally before its top loads the same weights at any size, so a small size is cheaper.
    """
    config = keras_nets.get_config(name)
    size = input_size or config.default_size
    keras.utils.set_random_seed(0)
    model = keras_nets.create_model(name, weights=None, input_shape=(size, size, 3), **kwargs)
    images = random_images(CALIBRATION_IMAGES, size)
    preprocessed = config.preprocess_input(images.copy())
    calibrate_batch_norm(model, preprocessed)
    last = model.layers[-1]
    if isinstance(last, keras.layers.Dense):
        features = keras.Model(model.inputs, last.input)(preprocessed)
        scale_classifier(last, keras.ops.convert_to_numpy(features))
    assert_informative(model.predict(preprocessed, verbose=0), f"{name} predictions")
    return model


def informative_weights(path, name, input_size=None, **kwargs):
    """Saves `informative_model(name, input_size, **kwargs)`'s weights to `path`; returns `str(path)`.

    Calibrated at `input_size` (default: the model's own): BatchNorm statistics measured at
    another size do not carry over (borders weigh differently), so calibrate where you predict.
    """
    informative_model(name, input_size, **kwargs).save_weights(path)
    return str(path)


def informative_classifier(base, classes, image_size, freeze=True, **kwargs):
    """`finetune.build_classifier(..., weights=None)` with a calibrated base and a spread head.

    The calibrated base stands for one with trained weights, so it is then frozen as such a base
    is (`finetune.set_base_frozen`): entirely, or with `freeze=False` all but its BatchNorm."""
    keras.utils.set_random_seed(0)
    model = finetune.build_classifier(base, classes, image_size=image_size, weights=None, **kwargs)
    images = random_images(CALIBRATION_IMAGES, image_size)
    base_model = finetune.base_model_of(model)
    preprocess = keras.Model(model.inputs, model.get_layer("preprocess").output)
    calibrate_batch_norm(base_model, preprocess(images))
    pooled = keras.Model(model.inputs, model.get_layer("avg_pool").output)(images)
    scale_classifier(model.get_layer("predictions"), keras.ops.convert_to_numpy(pooled))
    finetune.set_base_frozen(model, freeze)
    assert_informative(model.predict(images, verbose=0), f"{base} classifier predictions")
    return model
