"""BatchNormalization folding: a copy of a model where each foldable BatchNormalization is gone,
absorbed into the kernel and bias of the convolution before it, with the same outputs.

Both `compile_for_inference` and `export` start from such a copy, so a runtime sees one convolution
with a bias where Keras runs a convolution and a normalisation. The original model is never changed.
"""

import keras
import numpy as np

from keras_nets.core import graph
from keras_nets.core.layers import gelu_erf

FOLDABLE_CONVOLUTIONS = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)


def check_graph_model(model):
    """Raises a ValueError unless `model` is a Functional or Sequential Keras model with an input.

    Folding, compiling and exporting transform the model's graph of layers; a subclassed model
    (a `call` method) has none, and a Sequential model without an `Input` has no input yet.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model={model!r}: expected a keras.Model")
    if not isinstance(model, keras.Sequential) and not graph.is_graph_model(model):
        raise ValueError(
            f"model={model.name!r} is a subclassed {type(model).__name__}: expected a Functional "
            "or Sequential keras.Model (a subclassed model has no graph of layers to transform)"
        )
    try:
        model.inputs
    except (AttributeError, ValueError):
        raise ValueError(
            f"model={model.name!r} has no input yet: expected a model built on a keras.Input"
        ) from None


def fold_batch_norms(model):
    """A copy of `model` with each BatchNormalization folded into the convolution before it.

    A BatchNormalization is folded when it directly follows a Conv2D, DepthwiseConv2D or
    SeparableConv2D (its pointwise part) that has no activation, normalises the convolution's
    channel axis, and is that convolution's only consumer. The convolution then gets
    `kernel * scale` and a bias `beta + (bias - mean) * scale`, `scale = gamma / sqrt(var + eps)`,
    which is what the BatchNormalization computes in inference mode. A Normalization of the input
    channels (EfficientNet's) becomes a Rescaling with constant scale and offset. Nested Functional
    models are folded too; a Sequential model has no graph to rewire, so nothing folds in it (its
    Normalization is still rewritten). The copy has its own weights.
    Layers that tf2onnx cannot convert are written another way that computes the same (ConvNeXt's):
    a Conv2D with one group per channel as a DepthwiseConv2D (the kernel transposed: exact), an
    exact GELU with erf rather than TensorFlow's erfc (`gelu_erf`: to float rounding).
    LayerNormalization, which normalises each position over its channels, is never folded.

    Args:
      model: a Functional or Sequential keras.Model; it is not changed.

    Returns:
      The folded copy, a keras.Model of the same class.
    """
    check_graph_model(model)
    pairs = {} if isinstance(model, keras.Sequential) else foldable_pairs(model)
    folded_bns = {id(bn) for bn in pairs.values()}
    copies = []  # (original layer, its copy)

    def clone_layer(layer):
        if id(layer) in folded_bns:
            return layer  # never called: call_layer passes its input through
        if isinstance(layer, keras.Model) and not isinstance(layer, keras.Sequential):
            return fold_batch_norms(layer)
        if not isinstance(layer, keras.layers.Layer):
            return layer  # a stateless keras.ops operation; its config need not hold its arguments
        if _is_channel_normalization(layer):
            return _as_rescaling(layer)
        if _is_exact_gelu(layer):
            return keras.layers.Activation(gelu_erf, name=layer.name, dtype=layer.dtype_policy)
        if _is_depthwise_in_groups(layer):
            copy = _as_depthwise(layer, use_bias=layer.use_bias or id(layer) in pairs)
        else:
            config = layer.get_config()
            if id(layer) in pairs:
                config["use_bias"] = True
            copy = layer.__class__.from_config(config)
        copies.append((layer, copy))
        return copy

    def call_layer(layer, *args, **kwargs):
        if id(layer) in folded_bns:
            return args[0]
        return layer(*args, **kwargs)

    if isinstance(model, keras.Sequential):  # no graph to rewire: nothing folds, the rest holds
        folded = keras.models.clone_model(model, clone_function=clone_layer)
    else:
        folded = keras.models.clone_model(
            model, clone_function=clone_layer, call_function=call_layer
        )
    for layer, copy in copies:
        if id(layer) in pairs:
            weights = _folded_conv_weights(layer, pairs[id(layer)])
        elif layer.weights:
            weights = layer.get_weights()
        else:
            continue
        if _is_depthwise_in_groups(layer):  # (h, w, 1, channels) to (h, w, channels, 1)
            weights[0] = np.transpose(weights[0], (0, 1, 3, 2))
        copy.set_weights(weights)
        if isinstance(copy, keras.layers.Normalization):
            # it computes with copies of its mean and variance, taken when they load (as from
            # a weights file); set_weights alone leaves those at 0 and 1 (EfficientNet's)
            copy.finalize_state()
    return folded


def _is_exact_gelu(layer):
    """An Activation("gelu") (exact, erf-based; ConvNeXt's): TensorFlow writes it with erfc,
    which tf2onnx cannot convert, so the copy computes the same function with erf (`gelu_erf`)."""
    return isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.gelu


def _is_depthwise_in_groups(layer):
    """A Conv2D with one group per input channel and one filter per group (ConvNeXt's 7x7): a
    depthwise convolution, which tf2onnx converts, where it cannot convert a grouped Conv2D."""
    return (
        type(layer) is keras.layers.Conv2D
        and layer.groups > 1
        and layer.data_format == "channels_last"
        and layer.filters == layer.groups
        and layer.kernel.shape[2] == 1
    )


def _as_depthwise(conv, use_bias):
    """The DepthwiseConv2D that computes what the grouped `conv` computes, given its kernel
    transposed from (h, w, 1, channels) to (h, w, channels, 1): the same sums, exactly."""
    return keras.layers.DepthwiseConv2D(
        conv.kernel_size,
        strides=conv.strides,
        padding=conv.padding,
        depth_multiplier=1,
        data_format=conv.data_format,
        dilation_rate=conv.dilation_rate,
        activation=conv.activation,
        use_bias=use_bias,
        name=conv.name,
        dtype=conv.dtype_policy,
    )


def _is_channel_normalization(layer):
    """A Normalization (EfficientNet's input normalisation) of the last axis, channels last."""
    return (
        isinstance(layer, keras.layers.Normalization)
        and not layer.invert
        and len(graph.call_nodes(layer)) == 1
        and keras.backend.image_data_format() == "channels_last"
        and layer._keep_axis == (len(layer._build_input_shape) - 1,)
    )


def _as_rescaling(normalization):
    """A Rescaling that computes what the built `normalization` computes: `(x - mean) / std` as
    `x * (1 / std) + (-mean / std)`, `std = max(sqrt(variance), epsilon)`, exact to float
    rounding. The Normalization's mean and variance are captured tensors, which tf2onnx makes
    into graph inputs the caller must feed; a Rescaling's are constants in its config."""
    if normalization.input_mean is not None:
        mean, variance = normalization.input_mean, normalization.input_variance
    else:  # the weights: `normalization.mean` is a copy that set_weights leaves stale
        mean, variance = normalization.adapt_mean, normalization.adapt_variance
    channels = normalization._build_input_shape[-1]
    mean = np.broadcast_to(np.asarray(mean, dtype="float64").reshape(-1), (channels,))
    variance = np.broadcast_to(np.asarray(variance, dtype="float64").reshape(-1), (channels,))
    scale = 1.0 / np.maximum(np.sqrt(variance), keras.backend.epsilon())
    return keras.layers.Rescaling(
        scale=scale.tolist(),
        offset=(-mean * scale).tolist(),
        name=normalization.name,
        dtype=normalization.dtype_policy,
    )


def foldable_pairs(model):
    """What `fold_batch_norms` would fold in the Functional `model` (not inside nested models).

    Returns:
      {id(convolution layer): the BatchNormalization layer folded into it}; empty when nothing
      can be folded, e.g. in a model `fold_batch_norms` returned.
    """
    nodes = graph.model_nodes(model)
    consumers = {}
    for node in nodes:
        for tensor in node.input_tensors:
            consumers[id(tensor)] = consumers.get(id(tensor), 0) + 1
    for tensor in model.outputs:  # a model output has a consumer outside the model
        consumers[id(tensor)] = consumers.get(id(tensor), 0) + 1

    pairs = {}
    for node in nodes:
        bn = node.operation
        if not isinstance(bn, keras.layers.BatchNormalization) or len(node.input_tensors) != 1:
            continue
        tensor = node.input_tensors[0]
        conv = graph.producer(tensor)
        if (
            isinstance(conv, FOLDABLE_CONVOLUTIONS)
            and len(graph.call_nodes(conv)) == 1
            and len(graph.call_nodes(bn)) == 1
            and consumers.get(id(tensor)) == 1
            and conv.activation is keras.activations.linear
            and _channel_axis(conv, len(tensor.shape)) == bn.axis % len(tensor.shape)
        ):
            pairs[id(conv)] = bn
    return pairs


def _channel_axis(conv, rank):
    return rank - 1 if conv.data_format == "channels_last" else 1


def _folded_conv_weights(conv, bn):
    """The weights of `conv` with `use_bias=True` that compute `bn(conv(x))` in inference mode."""
    mean = np.asarray(bn.moving_mean, dtype="float64")
    variance = np.asarray(bn.moving_variance, dtype="float64")
    gamma = np.asarray(bn.gamma, dtype="float64") if bn.scale else np.ones_like(mean)
    beta = np.asarray(bn.beta, dtype="float64") if bn.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance + bn.epsilon)

    weights = conv.get_weights()
    bias = np.asarray(weights.pop(), dtype="float64") if conv.use_bias else np.zeros_like(mean)
    new_bias = beta + (bias - mean) * scale
    if isinstance(conv, keras.layers.SeparableConv2D):
        depthwise, pointwise = weights  # the pointwise kernel makes the output channels
        weights = [depthwise, pointwise * scale]
    elif isinstance(conv, keras.layers.DepthwiseConv2D):
        (kernel,) = weights  # (h, w, in, multiplier): output channel = in * multiplier + m
        weights = [kernel * scale.reshape(kernel.shape[2:])]
    else:
        (kernel,) = weights  # (h, w, in / groups, out)
        weights = [kernel * scale]
    dtype = conv.get_weights()[0].dtype
    return [w.astype(dtype) for w in weights] + [new_bias.astype(dtype)]
