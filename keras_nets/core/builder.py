"""What every builder shares, so that the model modules hold nothing but the network.

A builder calls, in order:
  1. `build = builder.start("xception", locals())` first thing: checks every argument up front;
     `build.input` is the input tensor;
  2. its layers, as the article writes them;
  3. `build.top(x)` (global average pool + Dense, or the pooled features without the top), or
     its own top and `build.pooled_features(x)`;
  4. `return build.finish(x)`: makes the Model and loads the requested weights.
"""

import dataclasses
import numbers
import os

import keras
from keras import layers

from keras_nets.core import registry
from keras_nets.weights import loading, manifest

POOLING_CHOICES = (None, "avg", "max")


def start(model_name, arguments, *, default_size=None, weights_variant=None, static=False):
    """Checks a builder's arguments and returns the `Build` that carries them.

    Args:
      model_name: the registry name, e.g. "xception"; sizes come from its `ModelConfig`.
      arguments: the builder's arguments, `locals()` as its first statement: include_top,
        weights, input_tensor, input_shape, pooling, classes, classifier_activation, name (the
        builder's other arguments are ignored here).
      default_size, weights_variant, static: see `image_input`.
    """
    shared = {key: arguments[key] for key in _SHARED_ARGUMENTS}
    tensor = image_input(
        model_name,
        default_size=default_size,
        weights_variant=weights_variant,
        static=static,
        **shared,
    )
    shared["classes"] = int(shared["classes"])  # a numpy integer too: Keras layers take ints
    return Build(model_name, tensor, weights_variant, name=arguments["name"], **shared)


ARGS_DOC = """

    Args:
      include_top: whether to end with {top}.
      weights: None (random initialisation){imagenet} or the path of a weights file.
      input_tensor: optional Keras tensor to use as the model's input.
      input_shape: {input_shape}
      pooling: with `include_top=False`: None ({feature_map}), "avg" or "max" ({vector}).
      classes: number of classes of the top classifier (1000 with ImageNet weights).
      classifier_activation: activation of the top layer; None returns logits.
      name: the model's name.{more}
    """


def with_args_doc(
    *,
    input_shape,
    feature_map,
    vector,
    top="the 1000-class ImageNet classifier",
    imagenet=True,
    more="",
):
    """Decorator that appends the Args every builder shares (keras.applications' wording) to
    the builder's one-line docstring; the keyword arguments fill in what differs."""
    published = ', "imagenet" (published weights, downloaded once to the Keras cache)'

    def document(builder_function):
        builder_function.__doc__ += ARGS_DOC.format(
            top=top,
            imagenet=published if imagenet else "",
            input_shape=input_shape,
            feature_map=feature_map,
            vector=vector,
            more=more,
        )
        return builder_function

    return document


_SHARED_ARGUMENTS = (
    "weights",
    "include_top",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
)


@dataclasses.dataclass
class Build:
    """One builder call's checked arguments, its input tensor and the steps around the network."""

    model_name: str
    input: object  # the Keras input tensor the network starts from
    weights_variant: str
    name: str
    weights: object
    include_top: bool
    input_tensor: object
    input_shape: tuple
    pooling: str
    classes: int
    classifier_activation: object

    def top(self, x, *, pool_name="avg_pool", dense_name="predictions", named_pooling=False):
        """The usual ImageNet top, global average pooling and one Dense layer; without the top,
        `pooled_features`. `named_pooling`: see `pooled_features`."""
        if not self.include_top:
            return self.pooled_features(x, named=named_pooling)
        x = layers.GlobalAveragePooling2D(name=pool_name)(x)
        return layers.Dense(self.classes, activation=self.classifier_activation, name=dense_name)(x)

    def pooled_features(self, x, named=False):
        """The output without the top: the last feature map, or its global average or max.

        `named`: call the pooling layer "avg_pool" / "max_pool", as some references do
        (DenseNet); the others leave it unnamed.
        """
        if self.pooling == "avg":
            return layers.GlobalAveragePooling2D(name="avg_pool" if named else None)(x)
        if self.pooling == "max":
            return layers.GlobalMaxPooling2D(name="max_pool" if named else None)(x)
        return x

    def finish(self, outputs, name=None):
        """The Functional model from the input to `outputs`, with `weights` loaded.

        `name` replaces the builder's `name` argument (for names computed from the arguments).
        """
        return finish_model(
            self.input,
            outputs,
            input_tensor=self.input_tensor,
            name=name or self.name,
            weights=self.weights,
            include_top=self.include_top,
            weights_variant=self.weights_variant,
            model_name=self.model_name,
        )


def image_input(
    model_name,
    *,
    weights,
    include_top,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation="softmax",
    default_size=None,
    weights_variant=None,
    static=False,
):
    """Validates a builder's arguments and returns its input tensor.

    Args:
      model_name: the registry name, e.g. "xception"; sizes come from its `ModelConfig`.
      default_size: overrides the config's default size (MobileNet variants pick theirs from
        `input_shape`).
      weights_variant: the manifest key of the published weights these arguments select, when it
        differs from `model_name` (e.g. "mobilenet_v2_0.35_96"); checked to exist when
        `weights="imagenet"`.
      static: the network needs a fixed height and width even without its top (NASNet's cells
        pad and crop by the static shape of their inputs): `input_shape=None` then means the
        default size, as keras.applications' NASNetMobile has it, and a None height or width is
        refused.
      The rest are the builder's own arguments, checked as `keras.applications` checks them.
    """
    config = registry.registered_config(model_name)
    _check_weights(config, weights, weights_variant or model_name, include_top)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            f"classes={classes!r}: with weights='imagenet' and include_top=True the classifier "
            "is the published 1000-class ImageNet one, so classes must be 1000; use "
            "include_top=False to put your own classifier on top"
        )
    if not is_integer(classes) or classes < 1:
        raise ValueError(f"classes={classes!r}: expected a positive integer")
    if pooling not in POOLING_CHOICES:
        raise ValueError(f"pooling={pooling!r}: expected one of None, 'avg' or 'max'")
    if weights == "imagenet" and include_top and classifier_activation not in (None, "softmax"):
        raise ValueError(
            f"classifier_activation={classifier_activation!r}: with weights='imagenet' and "
            "include_top=True only None (logits) or 'softmax' are meaningful"
        )
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            "keras.config.image_data_format() is 'channels_first'; keras_nets models are built "
            "channels_last (height, width, channels), the layout of the published weights"
        )

    if input_tensor is not None:
        tensor_shape = tuple(input_tensor.shape[1:])
        if input_shape is None:
            input_shape = tensor_shape
        elif not _shapes_agree(input_shape, tensor_shape):
            raise ValueError(
                f"input_shape={tuple(input_shape)!r} disagrees with the shape of input_tensor, "
                f"{tensor_shape!r}; pass one of them, or two that agree"
            )
    input_shape = resolve_input_shape(
        config,
        input_shape,
        default_size=default_size or config.default_size,
        require_default=(weights == "imagenet" and include_top),
        require_static=include_top,
        require_rgb=(weights == "imagenet"),
        static=static,
    )
    if input_tensor is None:
        return layers.Input(shape=input_shape)
    if not keras.backend.is_keras_tensor(input_tensor):
        return layers.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def published_size(input_shape, sizes, default, input_tensor=None):
    """The input size whose published weights fit `input_shape` (else `input_tensor`'s shape).

    The rule of keras.applications for weights published at several sizes (the MobileNets): a
    square height and width that is one of `sizes` selects that size, anything else `default`.
    Pass the result as `default_size` to `image_input`, which checks the shape itself.
    """
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if isinstance(input_shape, (tuple, list)) and len(input_shape) == 3:
        height, width = input_shape[:2]
        if height == width and height in sizes:
            return int(height)
    return default


def resolve_input_shape(
    config,
    input_shape,
    *,
    default_size,
    require_default,
    require_static,
    require_rgb,
    static=False,
):
    """The (height, width, channels) the model is built for, or a ValueError saying why not.

    `require_static`: this call needs a fixed height and width (the top's Dense layer);
    `static`: the network always does (see `image_input`)."""
    default_shape = (default_size, default_size, 3)
    if input_shape is None:
        return default_shape if require_static or static else (None, None, 3)
    if isinstance(input_shape, (str, bytes)):
        raise ValueError(f"input_shape={input_shape!r}: expected a tuple (height, width, channels)")
    try:
        given = tuple(input_shape)
    except TypeError:
        given = None
    if given is None or len(given) != 3 or not all(d is None or _is_size(d) for d in given):
        raise ValueError(
            f"input_shape={input_shape!r}: expected a tuple (height, width, channels) of "
            "whole numbers"
        )
    input_shape = tuple(None if d is None else int(d) for d in given)
    if input_shape[2] is not None and input_shape[2] < 1:
        raise ValueError(f"input_shape={input_shape!r}: expected at least 1 channel")
    if require_default and input_shape != default_shape:
        raise ValueError(
            f"input_shape={input_shape!r}: with weights='imagenet' and include_top=True, "
            f"{config.name} takes input_shape={default_shape}; use include_top=False for other "
            "sizes"
        )
    if require_rgb and input_shape[2] != 3:
        raise ValueError(
            f"input_shape={input_shape!r}: ImageNet weights expect 3 input channels (RGB)"
        )
    height, width = input_shape[:2]
    if require_static and (height is None or width is None):
        raise ValueError(
            f"input_shape={input_shape!r}: include_top=True needs a fixed height and width"
        )
    if static and (height is None or width is None):
        raise ValueError(
            f"input_shape={input_shape!r}: {config.name} needs a fixed height and width, "
            "with or without its top (its cells pad and crop by the input's static shape)"
        )
    for size in (height, width):
        if size is not None and size < config.min_size:
            raise ValueError(
                f"input_shape={input_shape!r}: {config.name} needs a height and width of at "
                f"least {config.min_size} pixels"
            )
    return input_shape


def is_integer(value):
    """An int or a numpy integer scalar, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_size(value):
    """A whole number: an integer, or a float such as 224.0 (not 224.5)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return is_integer(value) or float(value).is_integer()
    return False


def _shapes_agree(input_shape, tensor_shape):
    """Equal length, and equal wherever both give a size (None means any)."""
    return len(tuple(input_shape)) == len(tensor_shape) and all(
        a is None or b is None or a == b for a, b in zip(input_shape, tensor_shape)
    )


def _check_weights(config, weights, weights_variant, include_top):
    if weights is None:
        return
    if weights == "imagenet":
        if not config.published_weights:
            raise ValueError(
                f"weights='imagenet': no published ImageNet weights exist for {config.name}; "
                "use weights=None (random initialisation) or the path of your own weights file"
            )
        try:
            manifest.check_published(weights_variant, model=config.name)
        except ValueError as error:
            raise ValueError(f"weights='imagenet': {error}") from None
        return
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        return
    raise ValueError(
        f"weights={weights!r}: expected None (random initialisation), 'imagenet' (the published "
        "ImageNet weights) or the path of an existing weights file"
    )


def finish_model(
    img_input,
    outputs,
    *,
    input_tensor,
    name,
    weights,
    include_top,
    weights_variant=None,
    model_name,
):
    """Makes the Functional model and loads `weights`: "imagenet", a file path or None."""
    inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else img_input
    model = keras.Model(inputs, outputs, name=name)
    # The weights go to the network from its own input on: layers before an `input_tensor`
    # (in-graph preprocessing, say) must not shift the weighted layers a weights file lists.
    network = model if img_input is model.inputs[0] else keras.Model(img_input, outputs, name=name)
    if weights == "imagenet":
        loading.load_published_weights(network, weights_variant or model_name, include_top)
    elif weights is not None:
        loading.load_weights_file(network, weights)
    return model
