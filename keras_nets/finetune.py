"""Transfer learning on a registry model: a new classifier on a frozen base, then fine-tuning.

The recipe of the Keras transfer-learning guide, in two calls:

    model = build_classifier("mobilenet_v2", classes=5, image_size=160)
    model.fit(train, validation_data=val, epochs=10)          # phase 1: only the new top learns
    unfreeze_top(model, "block_13", learning_rate=1e-5)
    model.fit(train, validation_data=val, epochs=5)           # phase 2: the base's last blocks too

The classifier takes raw RGB pixels (0-255, as `keras.utils.image_dataset_from_directory` and
`keras-nets train` yield them) and does the base model's own `preprocess_input` inside, with standard Keras layers, so a
saved `model.keras` reloads with `keras.saving.load_model` alone and needs no preprocessing.
A base with trained weights is called with `training=False` and its BatchNormalization layers
are never made trainable: they stay in inference mode, with their ImageNet statistics, in both
phases. (Both are needed: Keras 3 lets the `training=True` of `fit` override the `training=False`
recorded in a Functional graph, keras-team/keras#20285, and a non-trainable BatchNormalization
layer runs in inference mode whatever `training` says.)

A base with random weights (`weights=None`) is the opposite case, training from scratch: frozen
BatchNorm statistics of 0 and 1 under random kernels make the activations vanish (about 1e-11 at
the pooled features of MobileNetV2), no gradient reaches anything and the loss stays at
ln(classes). So the whole network trains, BatchNormalization in training mode, with a momentum of
`FROM_SCRATCH_MOMENTUM` (see there why), and a frozen random base is refused: it cannot learn.

For a detection or segmentation head on `create_model(name, features_only=True)`,
`unfreeze_from(model, "P4")` freezes the backbone below pyramid level P4 (see keras_nets.features).
"""

import contextlib
import inspect
import json
import math
import numbers
import os
import pathlib
import zipfile

import keras
from keras import layers

from keras_nets.core import factory
from keras_nets.core.features import unfreeze_from  # noqa: F401 - a features model from a level on
from keras_nets.images.files import CLASS_NAMES_FILE
from keras_nets.images.layers import preprocessing_layers

DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_FINE_TUNE_LEARNING_RATE = 1e-5
# BatchNormalization momentum when training from scratch (the moving statistics keep 0.9 of their
# value per step: PyTorch's default, momentum=0.1 in its convention). The builders' 0.99 or 0.999
# (MobileNetV2) average over hundreds or thousands of steps, which suits ImageNet's long runs; on
# a short run the statistics lag far behind the weights: `keras-nets train` of MobileNetV2 (alpha
# 0.35) on the digits of benchmarks/train_from_scratch.py, 8 epochs, reached 93 % training but
# 10 % validation accuracy with 0.999, and 89.7 % with 0.9. A momentum (rather than measuring the
# statistics over the training set after the last epoch) also keeps every epoch's checkpoint,
# best.keras included, usable as it is saved.
FROM_SCRATCH_MOMENTUM = 0.9


def build_classifier(
    base,
    classes,
    *,
    image_size=None,
    weights="imagenet",
    dropout=0.2,
    freeze=None,
    learning_rate=DEFAULT_LEARNING_RATE,
    name=None,
    distribution=None,
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
      freeze: whether the base's weights are frozen (only the new head trains). With trained
        weights (the default: frozen), its BatchNormalization layers stay frozen, in inference
        mode, either way. With `weights=None` the whole network trains from scratch,
        BatchNormalization in training mode (momentum `FROM_SCRATCH_MOMENTUM`); `freeze=True`
        is then a ValueError (a frozen random base cannot learn).
      learning_rate: Adam learning rate the model is compiled with.
      name: the model's name (default "<base>_classifier").
      distribution: a strategy from `keras_nets.distribution.data_parallel` (or any object
        with a `.scope()`: a `keras.distribution.Distribution`, a `tf.distribute.Strategy`): the
        model is built and compiled in its scope, for data-parallel training; fit it in that
        scope too (JAX needs it to split the batches).
      **base_kwargs: more arguments for the base builder, e.g. `alpha=0.35` for MobileNetV2.

    Returns:
      A Functional model, image (0-255 RGB) -> softmax over `classes`, compiled with sparse
      categorical cross-entropy and accuracy. Its layers: "image", the preprocessing, the base
      model (named as the base builder names it), "avg_pool", "dropout", "predictions".
    """
    config = factory.get_config(base)
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
    unknown = set(base_kwargs) - set(inspect.signature(config.function).parameters)
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))}: not an argument of {config.builder}")
    freeze = check_freeze(freeze, weights)
    # With a strategy, the weights are made (and mirrored) on every device: built in its scope.
    with contextlib.nullcontext() if distribution is None else distribution.scope():
        base_model = factory.build(
            config,
            include_top=False,
            weights=weights,
            input_shape=(image_size, image_size, 3),
            **base_kwargs,
        )
        inputs = keras.Input((image_size, image_size, 3), name="image")
        x = preprocessing_layers(config.preprocessing)(inputs)
        if weights is None:
            train_from_scratch(base_model)
            x = base_model(x)  # BatchNorm normalises each batch while fitting, its own statistics
        else:
            set_trainable_from(base_model, None if freeze else 0)
            x = base_model(x, training=False)  # BatchNorm keeps its ImageNet statistics
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        model = keras.Model(
            inputs, classifier_top(x, classes, dropout), name=name or f"{base}_classifier"
        )
        compile_classifier(model, learning_rate)
        return model


def check_freeze(freeze, weights):
    """`freeze` resolved: None means frozen for trained weights, trainable for random ones; a
    ValueError for a frozen random base, whose features are noise no head can learn from."""
    if freeze is None:
        return weights is not None
    if freeze and weights is None:
        raise ValueError(
            "freeze=True with weights=None: a frozen base with random weights cannot learn; "
            "train the whole network (freeze=False) or give trained weights"
        )
    return bool(freeze)


def train_from_scratch(base_model):
    """Makes every layer of a random base trainable, BatchNormalization included, with the
    momentum `FROM_SCRATCH_MOMENTUM` (its moving statistics follow a short run)."""
    base_model.trainable = True
    for layer in base_model.layers:
        layer.trainable = True
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = FROM_SCRATCH_MOMENTUM


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
    """A model saved as `.keras` (by `keras-nets train` or `model.save`), uncompiled.

    A missing file, or one Keras cannot load, is a ValueError naming it, not a traceback from
    inside Keras (which reports a corrupt file as "File not found").
    """
    from keras_nets.core.safe_files import not_a_regular_file

    problem = not_a_regular_file(path)
    if problem:
        raise ValueError(
            f"{path}: no such model file" if not os.path.lexists(path) else f"{path}: {problem}"
        )
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a valid Keras model file (a .keras file is a zip archive)")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:
        raise ValueError(f"{path}: not a valid Keras model file ({error})") from None


def load_class_names(path):
    """The list of class names in the JSON file `path`; a ValueError naming the file if not."""
    try:
        with open(path, encoding="utf-8") as f:
            names = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON list of class names ({error})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        raise ValueError(f"{path}: expected a JSON list of class names (strings)")
    return names


def load_classifier(path):
    """A classifier saved by `keras-nets train` and its class names: `(model, class_names)`.

    Args:
      path: the `.keras` file; its labels are the `class_names.json` beside it.

    Returns:
      The uncompiled model (0-255 RGB images in, one probability per class out) and its class
      names in output order. Every problem (missing or invalid file, a model that does not end
      in a class vector, a count that differs) is a ValueError naming the file.
    """
    path = pathlib.Path(path)
    names_path = path.parent / CLASS_NAMES_FILE
    if path.is_file() and not names_path.is_file():
        raise ValueError(f"{path}: no {CLASS_NAMES_FILE} beside it (keras-nets train writes one)")
    model = load_trained(path)
    class_names = load_class_names(names_path)
    if len(model.output_shape) != 2:
        raise ValueError(
            f"{path}: its output has shape {model.output_shape}, not a vector of class "
            "probabilities (a model without its top?)"
        )
    if model.output_shape[-1] != len(class_names):
        raise ValueError(
            f"{names_path} lists {len(class_names)} classes but {path} predicts "
            f"{model.output_shape[-1]}"
        )
    return model, class_names


def classifier_to_train(
    base,
    classes,
    *,
    weights="imagenet",
    trained_classes=None,
    image_size=None,
    freeze=None,
    dropout=0.2,
    learning_rate=DEFAULT_LEARNING_RATE,
    **base_kwargs,
):
    """The compiled classifier `keras-nets train` trains: new, or continued from a trained one.

    Args:
      base: registry name of the base network (unused when `weights` is a `.keras` file).
      classes: number of classes to train.
      weights: "imagenet", None (random), a notop weights file for the base, or (continuing) a
        `.keras` classifier or, with `trained_classes`, a weights file saved from one.
      trained_classes: the number of classes the classifier in `weights` was trained on; its
        classifier layer is replaced by a `classes`-way one.
      image_size, dropout, **base_kwargs: as for `build_classifier`.
      freeze: whether the base stays frozen (default: frozen unless `weights` is None). A base
        with trained weights keeps its BatchNorm frozen either way; with `weights=None` the
        whole network trains, BatchNorm too, and `freeze=True` is a ValueError (see
        `build_classifier`).
      learning_rate: Adam learning rate.

    Returns:
      A compiled model; a ValueError says what is wrong with the arguments.
    """
    check_learning_rate(learning_rate)
    freeze = check_freeze(freeze, weights)
    common = dict(image_size=image_size, dropout=dropout, **base_kwargs)
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise ValueError(f"weights={weights}: no such file")
    if str(weights).endswith(".keras"):
        model = load_trained(weights)
        found = model.output_shape[-1]
        if trained_classes is not None and trained_classes != found:
            raise ValueError(
                f"trained_classes={trained_classes}: {weights} was trained on {found} classes"
            )
        if image_size is not None and tuple(model.input_shape[1:3]) != (image_size, image_size):
            raise ValueError(
                f"image_size={image_size}: {weights} takes {model.input_shape[1]}x"
                f"{model.input_shape[2]} images"
            )
    elif trained_classes is not None:
        if weights in (None, "imagenet"):
            raise ValueError(
                f"trained_classes={trained_classes} continues from a trained classifier: give its "
                "file as weights (a model.keras or a .weights.h5 saved from it)"
            )
        model = build_classifier(base, trained_classes, weights=None, **common)
        model.load_weights(weights)
    else:
        model = build_classifier(
            base, classes, weights=weights, freeze=freeze, learning_rate=learning_rate, **common
        )
        if weights is None:
            return model  # from scratch: everything trains, BatchNorm included

    if trained_classes is not None or model.output_shape[-1] != classes:
        model = replace_classifier(model, classes)
    set_base_frozen(model, freeze, learning_rate=learning_rate)
    return model


def check_learning_rate(learning_rate):
    """A ValueError unless `learning_rate` is a finite number above 0 (numpy scalars welcome)."""
    ok = isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool)
    if not ok or not math.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate={learning_rate!r}: expected a finite number above 0")


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
    """Makes the base's last blocks trainable, from layer or block `start` to its end;
    recompiles the model. (The name is public and kept: "top" here is the last blocks of the
    base, not the network's top, which is always trainable; CONTRIBUTING.md's words.)

    Args:
      model: a classifier built by `build_classifier`.
      start: a layer name ("block_13_expand") or a block prefix ("block13", "res5a",
        "mixed8", "block_13"; each model's in `get_config(name).unfreeze_prefixes`): the first base layer named `start` or `start_...` and every layer
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
    check_learning_rate(learning_rate)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        # TensorFlow's XLA costs more than it saves here: measured on CPU at 96 px, the first
        # epoch took 2.7x as long (compilation) and later steps 3x as long. JAX without jit runs
        # each operation eagerly: MobileNetV2 0.35 at 32 px took 1.1 s a step instead of 0.03 s.
        jit_compile=False if keras.backend.backend() == "tensorflow" else "auto",
    )
