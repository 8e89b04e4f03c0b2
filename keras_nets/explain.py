"""Grad-CAM: where in an image a classifier found the evidence for a class, on every Keras backend.

    heatmaps = grad_cam(model, preprocess_input(images))          # each image's top class
    picture = overlay(images[0], heatmaps[0])                      # RGB uint8, heatmap blended in

Grad-CAM (Selvaraju et al., 2017, arXiv:1610.02391) weights each channel k of a convolutional
feature map A by the gradient of the class score y^c averaged over the map's positions,
alpha_k = mean_ij dy^c/dA_k[i, j], and keeps the positive part of sum_k alpha_k A_k. As in the
paper, y^c is the class score *before* the softmax (the logit): the softmax gradient of one class
also depends on every other class's evidence, which blurs the map (Keras' own example uses the
softmax output; where a model's top ends in a softmax, we take the layer's input or the same layer
without its activation instead).

The model is split in two at the target layer: the images to the layer's activations A, and A to
the class scores; only the gradient of the second part is taken, through the active backend
(`keras_nets._gradients`: tf.GradientTape, jax.grad or torch.autograd).
"""

import keras
import numpy as np
from keras import layers, ops

from keras_nets import _gradients
from keras_nets.core import graph
from keras_nets.core.scores import refuse_nan

# Layers that reduce a feature map to one vector per image (kept 1x1 or not): a classifier top
# starts there, or where a feature map is flattened.
GLOBAL_POOLING = (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D)
# Layers passed over between the last convolutional activation and the top: the target is the
# feature map before them, at its finer resolution (VGG's block5_conv3, not block5_pool).
PASSED_OVER = (layers.MaxPooling2D, layers.AveragePooling2D, layers.Dropout, layers.Identity)


def grad_cam(model, images, class_index=None, layer=None):
    """Grad-CAM heatmaps of `images` for the classes `class_index`, at the images' resolution.

    Args:
      model: a Functional classifier, images -> class scores (n, classes): a registry model with
        its top, a model saved by `keras-nets train` (its base nested inside), or your own.
      images: a batch (n, height, width, channels) as the model takes it: for a registry model,
        preprocessed with its `preprocess_input`; for a `keras-nets train` model, 0-255 RGB.
      class_index: None for each image's top class, an int for the same class in every image, or
        a list of n ints, one per image.
      layer: the name of the target layer (searched in nested models too), or None for the
        model's last convolutional feature map: the last 4-D output before the layer that pools
        or flattens it, passing over pooling and dropout layers, inside a nested base if the base
        gives it (see `default_layer`).

    Returns:
      A float32 numpy array (n, height, width) in [0, 1]: the positive evidence for each image's
      class, resized (bilinear) to the input and divided by its maximum (all zeros where no
      position has positive evidence). A model whose scores for an image are NaN is a
      `keras_nets.scores.NaNScoresError` (a ValueError) naming the image.
    """
    images = ops.convert_to_tensor(images)
    if len(images.shape) != 4:
        raise ValueError(
            f"images: shape {tuple(images.shape)}; expected a batch (n, height, width, channels)"
        )
    count = int(images.shape[0])
    features, scores = split_at(model, layer)
    classes = _class_indices(class_index, count, int(model.outputs[0].shape[-1]))
    activations = ops.convert_to_tensor(features(images))

    def class_score(activations):
        logits = scores(activations)
        chosen = ops.argmax(ops.stop_gradient(logits), axis=-1) if classes is None else classes
        chosen = ops.cast(ops.reshape(chosen, (-1, 1)), "int32")
        # Images are independent, so the gradient of the sum is each image's own gradient.
        return ops.sum(ops.take_along_axis(logits, chosen, axis=-1)), ops.stop_gradient(logits)

    gradients, logits = _gradients.gradient(class_score, activations)
    # NaN scores have no top class and no evidence: a heatmap would explain nothing.
    refuse_nan(ops.convert_to_numpy(logits), [f"image {i}" for i in range(count)])
    channel_weights = ops.mean(ops.cast(gradients, "float32"), axis=(1, 2), keepdims=True)
    cams = ops.relu(ops.sum(channel_weights * ops.cast(activations, "float32"), axis=-1))
    height, width = int(images.shape[1]), int(images.shape[2])
    cams = ops.image.resize(cams[..., None], (height, width), interpolation="bilinear")[..., 0]
    peaks = ops.max(cams, axis=(1, 2), keepdims=True)
    cams = cams / ops.where(peaks > 0, peaks, ops.ones_like(peaks))  # an all-zero map stays zero
    return np.asarray(ops.convert_to_numpy(cams), dtype="float32")


def _class_indices(class_index, count, classes):
    """None, or an int32 array of one class per image, checked against the number of classes."""
    if class_index is None:
        return None
    if isinstance(class_index, (int, np.integer)) and not isinstance(class_index, bool):
        indices = [int(class_index)] * count
    else:
        try:
            indices = [int(i) for i in class_index]
        except (TypeError, ValueError):
            raise ValueError(
                f"class_index={class_index!r}: expected None, an int or a list of ints"
            ) from None
        if len(indices) != count:
            raise ValueError(
                f"class_index={class_index!r}: {len(indices)} classes for {count} images; "
                "expected one per image"
            )
    for i in indices:
        if not 0 <= i < classes:
            raise ValueError(
                f"class_index={class_index!r}: expected class indices in [0, {classes})"
            )
    return np.asarray(indices, dtype="int32")


# --- the target layer and the two halves of the model ----------------------------------------


def default_layer(model):
    """The name of the layer Grad-CAM explains by default: the last convolutional feature map.

    From the model's (first) output backwards: past the top up to the layer that pools or
    flattens the feature map, then past pooling and dropout layers, to the first layer with a
    4-D output; a nested model met on the way (the base of a `keras-nets train` model) is
    searched the same way, and the name returned is that of the layer inside it.
    """
    return _default_path(model)[-1][1].name


def split_at(model, layer=None):
    """(features, scores): images -> the target layer's activations -> pre-softmax class scores.

    Args:
      model: a Functional classifier.
      layer: the target layer's name, or None for `default_layer(model)`.

    Returns:
      Two callables on backend tensors; `scores(features(x))` equals the model's logits.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "outputs"):
        raise ValueError(
            f"model={model!r}: expected a Functional Keras model (a subclassed model has no "
            "graph to split)"
        )
    if len(model.outputs[0].shape) != 2:
        raise ValueError(
            f"model {model.name!r}: its output has shape {tuple(model.outputs[0].shape)}; "
            "expected class scores (n, classes): a model with its top"
        )
    path = _default_path(model) if layer is None else _named_path(model, layer)
    return _split(path, top=True)


def _split(path, top):
    """Splits the models of `path` = [(model, layer, output tensor), ...] at its last layer."""
    model, target, target_output = path[0]
    end = _logits(model) if top else model.outputs[0]
    if len(path) == 1:
        return _submodel(model.inputs, target_output, target), _submodel(target_output, end, target)
    # `target` is a nested model: images -> its input here, through it split, -> the end here.
    (nested_input,) = graph.producer_node(target_output).input_tensors
    before = _submodel(model.inputs, nested_input, target)
    inner_features, inner_scores = _split(path[1:], top=False)
    after = _submodel(target_output, end, target)
    return (lambda x: inner_features(before(x))), (lambda a: after(inner_scores(a)))


def _submodel(inputs, outputs, target):
    """The part of a graph from `inputs` to `outputs`, as a callable."""
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    if outputs is inputs:
        return lambda x: x
    try:
        return keras.Model(inputs, outputs)
    except ValueError:
        raise ValueError(
            f"layer={target.name!r}: the model cannot be split there (a connection bypasses "
            "it, as a residual connection does inside a block); choose a layer that every path "
            "from the input to the output goes through, such as a block's output"
        ) from None


def _logits(model):
    """The model's first output, before its softmax if its last layer applies one."""
    output = model.outputs[0]
    last = graph.producer_node(output).operation
    activation = getattr(last, "activation", None)
    if getattr(activation, "__name__", None) != "softmax":
        return output
    (inputs,) = graph.producer_node(output).input_tensors
    if isinstance(last, layers.Activation):
        return inputs
    # The same layer without its softmax: a copy sharing nothing with the model, same weights.
    config = {**last.get_config(), "activation": "linear", "name": f"{last.name}_logits"}
    linear = type(last).from_config(config)
    logits = linear(inputs)
    linear.set_weights(last.get_weights())
    return logits


def _default_path(model, through_top=True):
    """[(model, layer, output), ...] down to the default target layer, through nested models.

    `through_top`: the model ends in class scores, so its top is passed first; False for a
    nested base, whose output is already a feature map.
    """
    chain = []  # (tensor, the operation that made it), from the output back
    tensor = model.outputs[0]
    while True:
        node = graph.producer_node(tensor)
        chain.append((tensor, node.operation))
        if isinstance(node.operation, keras.Model) or len(node.input_tensors) != 1:
            break
        tensor = node.input_tensors[0]
    start = 0
    if through_top:
        # The top starts at its global pooling (the MobileNets flatten 1x1 logits after it), else
        # at the Flatten of a feature map (VGG, AlexNet).
        ends = [i for i, (_, op) in enumerate(chain) if isinstance(op, GLOBAL_POOLING)] or [
            i for i, (t, op) in enumerate(chain) if _flattens(op, t)
        ]
        if not ends and isinstance(chain[-1][1], keras.Model):
            # A whole classifier nested in this model: its top is this model's top.
            tensor, nested = chain[-1]
            return [(model, nested, tensor), *_default_path(nested)]
        start = ends[0] + 1 if ends else len(chain)
    for tensor, operation in chain[start:]:
        if len(tensor.shape) == 4 and not isinstance(operation, (*PASSED_OVER, layers.InputLayer)):
            if isinstance(operation, keras.Model):
                return [(model, operation, tensor), *_default_path(operation, through_top=False)]
            return [(model, operation, tensor)]
    raise ValueError(
        f"model {model.name!r}: no convolutional feature map found from its output back "
        f"(stopped at {chain[-1][1].name!r}); pass layer= the name of the layer to explain"
    )


def _flattens(operation, outputs):
    """Whether `operation` turns a feature map into a vector (Flatten, Reshape)."""
    inputs = graph.producer_node(outputs).input_tensors
    return len(inputs) == 1 and len(inputs[0].shape) == 4 and len(outputs.shape) != 4


def _named_path(model, name):
    """[(model, layer, output), ...] to the layer called `name`, searching nested models."""
    path = _find(model, name)
    if path is None:
        raise ValueError(f"layer={name!r}: no layer of model {model.name!r} has that name")
    output = path[-1][2]
    if len(output.shape) != 4:
        raise ValueError(
            f"layer={name!r}: its output has shape {tuple(output.shape)}; expected a feature "
            "map (n, height, width, channels)"
        )
    return path


def _find(model, name):
    for layer in model.layers:
        if layer.name == name:
            return [(model, layer, _output_in(model, layer))]
    for layer in model.layers:
        if isinstance(layer, keras.Model) and hasattr(layer, "outputs"):
            inner = _find(layer, name)
            if inner is not None:
                return [(model, layer, _output_in(model, layer)), *inner]
    return None


def _output_in(model, layer):
    """The output tensor of `layer` in `model`'s graph (for a nested model, not its own)."""
    if not isinstance(layer, keras.Model):
        return layer.output
    called_here = [
        node for node in graph.call_nodes(layer) if any(node is n for n in _nodes_of(model))
    ]
    if len(called_here) != 1:
        raise ValueError(
            f"layer={layer.name!r}: a nested model must be called exactly once in the model"
        )
    (output,) = called_here[0].output_tensors
    return output


def _nodes_of(model):
    return [node for layer in model.layers for node in graph.call_nodes(layer)]


# --- pictures ----------------------------------------------------------------------------------

# matplotlib's "jet" (its _jet_data: per channel, (position, value) points joined by straight
# lines), for when matplotlib is not installed.
JET = (
    ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),  # red
    ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),  # green
    ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),  # blue
)


def overlay(image, heatmap, alpha=0.4, colormap="jet"):
    """`image` with `heatmap` coloured and blended in: what a Grad-CAM figure shows.

    Args:
      image: an RGB image (height, width, 3), uint8 or 0-255 floats.
      heatmap: a (h, w) map in [0, 1], e.g. one of `grad_cam`'s; resized to the image.
      alpha: the heatmap's weight in the blend, in [0, 1].
      colormap: a matplotlib colormap name; without matplotlib only "jet" (built in).

    Returns:
      A uint8 RGB array (height, width, 3): (1 - alpha) * image + alpha * colour(heatmap).
    """
    image = np.asarray(image)
    heatmap = np.asarray(heatmap, dtype="float32")
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image: shape {image.shape}; expected an RGB image (height, width, 3)")
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap: shape {heatmap.shape}; expected a map (height, width)")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha={alpha!r}: expected a weight in [0, 1]")
    heatmap = np.clip(np.nan_to_num(heatmap), 0.0, 1.0)
    if heatmap.shape != image.shape[:2]:
        heatmap = ops.convert_to_numpy(
            ops.image.resize(heatmap[..., None], image.shape[:2], interpolation="bilinear")
        )[..., 0].clip(0.0, 1.0)
    colours = 255.0 * _colour(heatmap, colormap)
    blended = (1.0 - alpha) * image.astype("float32") + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype("uint8")


def _colour(values, colormap):
    """RGB in [0, 1] for values in [0, 1]: matplotlib's colormap, else the built-in jet."""
    try:
        import matplotlib
    except ImportError:
        matplotlib = None
    if matplotlib is not None:
        try:
            cmap = matplotlib.colormaps[colormap]
        except KeyError:
            raise ValueError(
                f"colormap={colormap!r}: not a matplotlib colormap (e.g. 'jet', 'viridis')"
            ) from None
        return cmap(values)[..., :3]
    if colormap != "jet":
        raise ValueError(f"colormap={colormap!r}: without matplotlib only 'jet' is available")
    return np.stack([np.interp(values, *zip(*points)) for points in JET], axis=-1)
