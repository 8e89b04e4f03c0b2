"""Transfer learning on a registry model: a new classifier on a frozen base, then fine-tuning.

The recipe of the Keras transfer-learning guide, in two calls:

    model = build_classifier("mobilenet_v2", classes=5, image_size=160)
    model.fit(train, validation_data=val, epochs=10)          # phase 1: only the new head learns
    unfreeze_top(model, "block_13", learning_rate=1e-5)
    model.fit(train, validation_data=val, epochs=5)           # phase 2: the top of the base too

The classifier takes raw RGB pixels (0-255, as `keras.utils.image_dataset_from_directory` yields
them) and does the base model's own `preprocess_input` inside, with standard Keras layers, so a
saved `model.keras` reloads with `keras.saving.load_model` alone and needs no preprocessing.
The base is called with `training=False` and its BatchNormalization layers are never made
trainable: they stay in inference mode, with their ImageNet statistics, in both phases. (Both are
needed: Keras 3 lets the `training=True` of `fit` override the `training=False` recorded in a
Functional graph, keras-team/keras#20285, and a non-trainable BatchNormalization layer runs in
inference mode whatever `training` says.)
"""

import inspect

import keras
import numpy as np
from keras import layers

from keras_nets import registry

DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_FINE_TUNE_LEARNING_RATE = 1e-5


def build_classifier(
    base,
    classes,
    *,
    image_size=None,
    weights="imagenet",
    dropout=0.2,
    freeze=True,
    learning_rate=DEFAULT_LEARNING_RATE,
    name=None,
    **base_kwargs,
):
    """A compiled `classes`-way classifier on the registry model `base`, its top replaced.

    Args:
      base: registry name of the base network, e.g. "mobilenet_v2" (see `keras_nets.list_models`).
      classes: number of classes, at least 2.
      image_size: input height and width (default: the base's own default size).
      weights: base weights: "imagenet", None (random initialisation) or the path of a notop
        weights file.
      dropout: dropout rate before the new Dense layer.
      freeze: whether the base's weights are frozen (only the new head trains); its
        BatchNormalization layers stay frozen, in inference mode, either way.
      learning_rate: Adam learning rate the model is compiled with.
      name: the model's name (default "<base>_classifier").
      **base_kwargs: more arguments for the base builder, e.g. `alpha=0.35` for MobileNetV2.

    Returns:
      A Functional model, image (0-255 RGB) -> softmax over `classes`, compiled with sparse
      categorical cross-entropy and accuracy. Its layers: "image", the preprocessing, the base
      model (named as the base builder names it), "avg_pool", "dropout", "predictions".
    """
    config = registry.get_config(base)
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 2:
        raise ValueError(f"classes={classes!r}: expected an integer of at least 2")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout={dropout!r}: expected a rate in [0, 1)")
    image_size = config.default_size if image_size is None else image_size
    if not isinstance(image_size, int) or image_size < config.min_size:
        raise ValueError(
            f"image_size={image_size!r}: {config.name} needs an integer of at least "
            f"{config.min_size}"
        )
    unknown = set(base_kwargs) - set(
        inspect.signature(getattr(config.module, config.builder)).parameters
    )
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))}: not an argument of {config.builder}")
    base_model = config.build(
        include_top=False,
        weights=weights,
        input_shape=(image_size, image_size, 3),
        **base_kwargs,
    )
    set_trainable_from(base_model, None if freeze else 0)

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = preprocessing_layers(config.preprocessing)(inputs)
    x = base_model(x, training=False)  # BatchNorm keeps its ImageNet statistics, frozen or not
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    model = keras.Model(
        inputs, classifier_top(x, classes, dropout), name=name or f"{base}_classifier"
    )
    compile_classifier(model, learning_rate)
    return model


def classifier_top(features, classes, dropout=0.2):
    """Dropout and the softmax Dense layer named "predictions", on pooled features."""
    x = layers.Dropout(dropout, name="dropout")(features)
    return layers.Dense(classes, activation="softmax", name="predictions")(x)


def replace_classifier(model, classes, learning_rate=DEFAULT_LEARNING_RATE):
    """`model` with its last Dense layer swapped for a new `classes`-way one; the rest is shared.

    This continues training of a classifier built by `build_classifier` (e.g. a `model.keras`
    saved by `keras-nets train`) on a dataset with a different number of classes.
    """
    last = model.layers[-1]
    if not isinstance(last, layers.Dense):
        raise ValueError(
            f"model {model.name!r} does not end with a Dense classifier layer (its last layer is "
            f"{last.name!r}, a {type(last).__name__})"
        )
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(last.input)
    new_model = keras.Model(model.inputs, outputs, name=model.name)
    compile_classifier(new_model, learning_rate)
    return new_model


def load_trained(path):
    """A classifier saved as `.keras` (by `keras-nets train` or `model.save`), uncompiled.

    A file Keras cannot load is a ValueError naming it, not a traceback from inside Keras.
    """
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - a broken file is bad input, not a crash
        raise ValueError(f"{path}: cannot be loaded as a Keras model ({error})") from None


def base_model_of(model):
    """The base network inside a classifier built by `build_classifier`: its nested Model."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    raise ValueError(f"model {model.name!r} has no nested base model")


def set_base_frozen(model, frozen, learning_rate=DEFAULT_LEARNING_RATE):
    """Freezes (or unfreezes, BatchNorm excepted) the whole base of a classifier; recompiles it."""
    set_trainable_from(base_model_of(model), None if frozen else 0)
    compile_classifier(model, learning_rate)


def unfreeze_top(model, start, learning_rate=DEFAULT_FINE_TUNE_LEARNING_RATE):
    """Makes the base trainable from layer or block `start` to its end; recompiles the model.

    Args:
      model: a classifier built by `build_classifier`.
      start: a layer name ("block_13_expand") or a block prefix ("block13", "conv5_block1",
        "mixed9", "block_13"): the first base layer named `start` or `start_...` and every layer
        after it become trainable (BatchNormalization layers excepted), the layers before it
        are frozen.
      learning_rate: the (low) Adam learning rate of the fine-tuning phase.

    Returns:
      The number of base layers that are now trainable.
    """
    base_model = base_model_of(model)
    names = [layer.name for layer in base_model.layers]
    matches = (i for i, n in enumerate(names) if n == start or n.startswith(f"{start}_"))
    first = next(matches, None)
    if first is None:
        raise ValueError(
            f"start={start!r} names no layer or block of {base_model.name}, whose layers run "
            f"from {names[1]!r} to {names[-1]!r}"
        )
    set_trainable_from(base_model, first)
    compile_classifier(model, learning_rate)
    return len(base_model.layers) - first


def set_trainable_from(base_model, first):
    """Layers from index `first` on become trainable (none if `first` is None), BatchNorm never."""
    base_model.trainable = first is not None
    for i, layer in enumerate(base_model.layers):
        layer.trainable = (
            first is not None and i >= first and not isinstance(layer, layers.BatchNormalization)
        )


def compile_classifier(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        # XLA costs more than it saves here: measured on CPU at 96 px, the first epoch took 2.7x
        # as long (compilation) and later steps 3x as long.
        jit_compile=False,
    )


def preprocessing_layers(mode):
    """`imagenet.preprocess_input(x, mode)` as standard Keras layers (saved with the model).

    "tf" is a Rescaling to [-1, 1]; "torch" a Normalization with the ImageNet mean and standard
    deviation in 0-255 units; "caffe" a fixed 1x1 linear map that swaps RGB to BGR and subtracts
    the ImageNet mean (a frozen Dense on the channel axis); "none" passes pixels through (the
    model preprocesses them itself).
    """
    if mode == "tf":
        return layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")
    if mode == "torch":
        mean = 255.0 * np.array([0.485, 0.456, 0.406])
        std = 255.0 * np.array([0.229, 0.224, 0.225])
        return layers.Normalization(mean=mean, variance=std**2, name="preprocess")
    if mode == "caffe":
        rgb_to_bgr = np.eye(3, dtype="float32")[:, ::-1]
        mean_bgr = np.array([103.939, 116.779, 123.68], dtype="float32")
        layer = layers.Dense(3, name="preprocess", trainable=False)
        layer.build((None, 3))
        layer.set_weights([rgb_to_bgr, -mean_bgr])
        return layer
    if mode == "none":
        return layers.Identity(name="preprocess")
    raise ValueError(f"preprocessing mode={mode!r}: expected 'tf', 'caffe', 'torch' or 'none'")
