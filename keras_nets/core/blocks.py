"""Pieces several networks share, written once: the model modules keep only what is their own.

Each keeps the reference's arithmetic exactly, since the published weights depend on the channel
counts and paddings it produces.
"""

import numbers

from keras import layers

# BatchNormalization of the TF-slim MobileNets (V2, V3): Keras' defaults are 1e-3 and 0.99.
MOBILENET_BN = dict(epsilon=1e-3, momentum=0.999)


def conv_bn(
    x,
    filters,
    kernel_size,
    *,
    strides=1,
    padding="same",
    activation="relu",
    conv_name=None,
    bn_name=None,
    activation_name=None,
    **bn_args,
):
    """Convolution without bias, BatchNormalization (`bn_args`, e.g. scale=False) and an
    activation (None: none), as the Inception networks build every convolution.

    Each layer's name is given apart because the references name them each their own way (or
    not at all: None leaves Keras' automatic name).
    """
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=conv_name
    )(x)
    x = layers.BatchNormalization(name=bn_name, **bn_args)(x)
    if activation is None:
        return x
    return layers.Activation(activation, name=activation_name)(x)


def make_divisible(v, divisor=8):
    """`v` rounded to the nearest multiple of 8, at least 8 and never more than 10% below `v`
    (the TF-slim MobileNets' channel rounding)."""
    rounded = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


def stride2_padding(x, kernel_size):
    """Zero padding before a stride-2 'valid' convolution that matches TF's 'same' (Keras'
    `correct_pad`): on an even size the top and left get one pixel less than the bottom and
    right."""
    height, width = x.shape[1:3]
    adjust = (1, 1) if height is None else (1 - height % 2, 1 - width % 2)
    half = kernel_size // 2
    return ((half - adjust[0], half), (half - adjust[1], half))


# Width multipliers above this build networks of more than 16x the paper's weights (alpha 1e6:
# a MemoryError, inf: an OverflowError); the published ones go up to 1.4.
MAX_WIDTH_MULTIPLIER = 4.0


def check_width_multiplier(alpha):
    """A ValueError unless `alpha` is a number in (0, MAX_WIDTH_MULTIPLIER] (ints and numpy
    scalars included)."""
    number = not isinstance(alpha, bool) and isinstance(alpha, numbers.Real)
    if not (number and 0 < alpha <= MAX_WIDTH_MULTIPLIER):
        raise ValueError(
            f"alpha={alpha!r}: expected a number above 0 and at most {MAX_WIDTH_MULTIPLIER:g} "
            "(the width multiplier)"
        )


def squeeze_excite(inputs, squeezed, name, kernel_initializer):
    """EfficientNet's (V1 and V2) squeeze-and-excite: global average pool, 1x1 reduce to
    `squeezed` channels (swish), 1x1 expand back (sigmoid), and the block's channels rescaled by
    the result; layers named `{name}se_squeeze` ... `{name}se_excite`, as Keras names them."""
    channels = inputs.shape[-1]
    se = layers.GlobalAveragePooling2D(name=f"{name}se_squeeze")(inputs)
    se = layers.Reshape((1, 1, channels), name=f"{name}se_reshape")(se)
    se = layers.Conv2D(
        squeezed,
        1,
        padding="same",
        activation="swish",
        kernel_initializer=kernel_initializer,
        name=f"{name}se_reduce",
    )(se)
    se = layers.Conv2D(
        channels,
        1,
        padding="same",
        activation="sigmoid",
        kernel_initializer=kernel_initializer,
        name=f"{name}se_expand",
    )(se)
    return layers.Multiply(name=f"{name}se_excite")([inputs, se])
