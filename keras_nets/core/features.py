"""Multi-scale feature maps of every registry model, as a backbone for detection and segmentation.

`create_model(name, features_only=True)` builds the model without its top and returns a model
from the same input to a dict of feature maps keyed by pyramid level: "Pk" is the last block
output at stride 2**k against the input, after its activation (timm's `feature_info`, keras-hub's
`pyramid_outputs`). Which layer gives each level is declared once per model, by the
`feature_layers` argument of its `@register_model`; nothing here knows any network. The feature
maps are the outputs of those very layers of the model without its top, so they equal the full
model's to the bit, and weights load through the builder as for any model.

Spatial sizes: level k of an input of height h has between h / 2**k - 5 and ceil(h / 2**k)
rows, as each network's stride-2 steps round: "same" padding rounds up (ResNet50, MobileNetV2/V3,
ShuffleNetV2: 257 -> 129, 65, 33, 17, 9), 2x2 pools and asymmetric padding round down (VGG,
DenseNet, MobileNet: 257 -> 128, 64, 32, 16, 8), and the "valid" convolutions of the Inceptions,
Xception's stem and AlexNet lose a border (InceptionV3 at 299: 147, 71, 35, 17, 8).
`feature_info(name, input_shape)` gives the exact sizes, read from the built model.
"""

import functools

import keras

from keras_nets.core import factory, graph
from keras_nets.core.factory import LEVELS, create_features_model  # noqa: F401 - built there


def feature_info(name, input_shape=None, **kwargs):
    """Per pyramid level of `name`: level, stride, channels and layer name.

    Args:
      name: the registry name.
      input_shape: (height, width, channels) to also get each level's "height" and "width" for
        that input; None builds at the default size and leaves them out. Channels are read from
        the built model, so they follow width arguments such as `alpha` (passed in `kwargs`).
      **kwargs: further builder arguments, e.g. `alpha=0.35`.

    Returns:
      A list of dicts {"level", "stride", "channels", "layer"} (plus "height", "width" when
      `input_shape` is given), in pyramid order.
    """
    arguments = tuple(sorted(kwargs.items()))
    return [dict(entry) for entry in _feature_info(name, _hashable(input_shape), arguments)]


def _hashable(input_shape):
    return input_shape if input_shape is None else tuple(input_shape)


@functools.lru_cache(maxsize=64)
def _feature_info(name, input_shape, arguments):
    config = factory.get_config(name)
    model = create_features_model(name, weights=None, input_shape=input_shape, **dict(arguments))
    info = []
    for level, layer in config.feature_layers.items():
        shape = model.output[level].shape
        entry = {
            "level": level,
            "stride": 2 ** int(level[1:]),
            "channels": int(shape[-1]),
            "layer": layer,
        }
        if input_shape is not None:
            entry.update(height=shape[1], width=shape[2])
        info.append(entry)
    return info


def unfreeze_from(model, level):
    """Freezes the backbone of a features model below `level`: the layers that compute the
    previous level stay frozen, the block ending at `level`, all after it and any head built on
    the features train (BatchNormalization layers excepted: they stay frozen, in inference mode,
    as in `keras_nets.finetune`). Returns the number of layers left trainable.

    Args:
      model: a model from `create_model(name, features_only=True)`, or a model built on its
        inputs and outputs (a U-Net, an FPN head).
      level: "P1" ... "P5", e.g. "P5" trains only the last stage of the backbone and the head.
    """
    names = {layer.name for layer in model.layers}
    declared = {}  # level -> its layer in this model, from the registry's declarations
    for config in factory.models().values():
        for known_level, layer_name in config.feature_layers.items():
            if layer_name in names:
                declared.setdefault(known_level, layer_name)
    if level not in declared:
        raise ValueError(
            f"level={level!r}: expected one of {', '.join(sorted(declared))}, the levels whose "
            "layers this model has"
        )
    below = [known for known in sorted(declared) if known < level]
    frozen = graph.ancestors(model.get_layer(declared[below[-1]])) if below else set()
    trainable = 0
    for layer in model.layers:
        layer.trainable = not (
            layer.name in frozen or isinstance(layer, keras.layers.BatchNormalization)
        )
        trainable += bool(layer.weights) and layer.trainable
    return trainable
