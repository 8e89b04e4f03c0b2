"""Inception-ResNet-v2, layer by layer.

Szegedy, Ioffe, Vanhoucke and Alemi, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning" (AAAI 2017). Layer names and weighted-layer order are those of
`keras.applications.InceptionResNetV2`, so the published
`inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5` files load with a plain
`model.load_weights(path)`. Branch convolutions stay unnamed, as in the reference code.

Each residual is scaled down before it is added (the paper's remedy for unstable training). The
reference does both in one unnamed custom layer; here a `Rescaling` layer scales and an `Add`
layer named like the block adds (the name Keras 2's reference code gave that step). Neither holds
weights, so the weights line up the same, and the model saves and loads as `.keras` with built-in
layers only.
"""

from keras import layers

from keras_nets.core import blocks, builder, imagenet
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model


@register_model(
    "inception_resnet_v2", default_size=299, min_size=75, preprocessing="tf",
    unfreeze_prefixes=("mixed_7a", "mixed_6a"),
    feature_layers=dict(P1="stem_conv3_ac", P2="stem_conv5_ac", P3="block35_10_ac", P4="block17_20_ac", P5="conv_7b_ac"),
)
@builder.with_args_doc(
    input_shape="(height, width, 3), each at least 75; only with `include_top=False` may it\n"
    "        differ from (299, 299, 3).",
    feature_map="the 8x8x1536 feature map at 299x299", vector="a 1536-vector",
)
def InceptionResNetV2(include_top=True, weights="imagenet", input_tensor=None,
                      input_shape=None, pooling=None, classes=1000,
                      classifier_activation="softmax", name="inception_resnet_v2"):
    """Builds Inception-ResNet-v2 (55.9M parameters; 299x299 inputs scaled to [-1, 1])."""
    build = builder.start("inception_resnet_v2", locals())

    # Stem ------------------------------------------------------------ 299x299x3
    x = conv2d_bn(build.input, 32, 3, strides=2, padding="valid")  # 149x149x32
    x = conv2d_bn(x, 32, 3, padding="valid")  # 147x147x32
    x = conv2d_bn(x, 64, 3, name="stem_conv3")  # 147x147x64
    x = layers.MaxPooling2D(3, strides=2)(x)  # 73x73x64
    x = conv2d_bn(x, 80, 1, padding="valid")  # 73x73x80
    x = conv2d_bn(x, 192, 3, padding="valid", name="stem_conv5")  # 71x71x192
    x = layers.MaxPooling2D(3, strides=2)(x)  # 35x35x192

    # Mixed 5b (Inception-A) ------------------------------------------ 35x35x192
    branch_0 = conv2d_bn(x, 96, 1)
    branch_1 = conv2d_bn(x, 48, 1)
    branch_1 = conv2d_bn(branch_1, 64, 5)
    branch_2 = conv2d_bn(x, 64, 1)
    branch_2 = conv2d_bn(branch_2, 96, 3)
    branch_2 = conv2d_bn(branch_2, 96, 3)
    branch_pool = layers.AveragePooling2D(3, strides=1, padding="same")(x)
    branch_pool = conv2d_bn(branch_pool, 64, 1)
    branches = [branch_0, branch_1, branch_2, branch_pool]
    x = layers.Concatenate(name="mixed_5b")(branches)  # 35x35x320

    # 10 x Inception-ResNet-A, residuals scaled by 0.17 --------------- 35x35x320
    for block_idx in range(1, 11):
        x = block35(x, scale=0.17, block_idx=block_idx)

    # Mixed 6a (Reduction-A) ------------------------------------------ 35x35x320
    branch_0 = conv2d_bn(x, 384, 3, strides=2, padding="valid")
    branch_1 = conv2d_bn(x, 256, 1)
    branch_1 = conv2d_bn(branch_1, 256, 3)
    branch_1 = conv2d_bn(branch_1, 384, 3, strides=2, padding="valid")
    branch_pool = layers.MaxPooling2D(3, strides=2, padding="valid")(x)
    x = layers.Concatenate(name="mixed_6a")([branch_0, branch_1, branch_pool])  # 17x17x1088

    # 20 x Inception-ResNet-B, residuals scaled by 0.1 ---------------- 17x17x1088
    for block_idx in range(1, 21):
        x = block17(x, scale=0.1, block_idx=block_idx)

    # Mixed 7a (Reduction-B) ------------------------------------------ 17x17x1088
    branch_0 = conv2d_bn(x, 256, 1)
    branch_0 = conv2d_bn(branch_0, 384, 3, strides=2, padding="valid")
    branch_1 = conv2d_bn(x, 256, 1)
    branch_1 = conv2d_bn(branch_1, 288, 3, strides=2, padding="valid")
    branch_2 = conv2d_bn(x, 256, 1)
    branch_2 = conv2d_bn(branch_2, 288, 3)
    branch_2 = conv2d_bn(branch_2, 320, 3, strides=2, padding="valid")
    branch_pool = layers.MaxPooling2D(3, strides=2, padding="valid")(x)
    branches = [branch_0, branch_1, branch_2, branch_pool]
    x = layers.Concatenate(name="mixed_7a")(branches)  # 8x8x2080

    # 10 x Inception-ResNet-C, residuals scaled by 0.2; the last unscaled, no ReLU -- 8x8x2080
    for block_idx in range(1, 10):
        x = block8(x, scale=0.2, block_idx=block_idx)
    x = block8(x, scale=1.0, block_idx=10, activation=None)

    x = conv2d_bn(x, 1536, 1, name="conv_7b")  # 8x8x1536

    x = build.top(x)  # 1000 classes, or the features
    return build.finish(x)


def conv2d_bn(
    x, filters, kernel_size, strides=1, padding="same", activation="relu", use_bias=False, name=None
):
    """Convolution, BatchNormalization without gamma (unless the convolution has a bias), ReLU."""
    if not use_bias:
        return blocks.conv_bn(
            x, filters, kernel_size, strides=strides, padding=padding, activation=activation,
            conv_name=name, bn_name=None if name is None else f"{name}_bn",
            activation_name=None if name is None else f"{name}_ac", scale=False,
        )
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=True, name=name
    )(x)
    if activation is not None:
        x = layers.Activation(activation, name=None if name is None else f"{name}_ac")(x)
    return x


def block35(x, scale, block_idx):
    """Inception-ResNet-A: 1x1, 1x1-3x3 and 1x1-3x3-3x3 branches, 35x35x320 in and out."""
    branch_0 = conv2d_bn(x, 32, 1)
    branch_1 = conv2d_bn(x, 32, 1)
    branch_1 = conv2d_bn(branch_1, 32, 3)
    branch_2 = conv2d_bn(x, 32, 1)
    branch_2 = conv2d_bn(branch_2, 48, 3)
    branch_2 = conv2d_bn(branch_2, 64, 3)
    return add_scaled_residual(x, [branch_0, branch_1, branch_2], scale, f"block35_{block_idx}")


def block17(x, scale, block_idx):
    """Inception-ResNet-B: 1x1 and 1x1-1x7-7x1 branches, 17x17x1088 in and out."""
    branch_0 = conv2d_bn(x, 192, 1)
    branch_1 = conv2d_bn(x, 128, 1)
    branch_1 = conv2d_bn(branch_1, 160, (1, 7))
    branch_1 = conv2d_bn(branch_1, 192, (7, 1))
    return add_scaled_residual(x, [branch_0, branch_1], scale, f"block17_{block_idx}")


def block8(x, scale, block_idx, activation="relu"):
    """Inception-ResNet-C: 1x1 and 1x1-1x3-3x1 branches, 8x8x2080 in and out."""
    branch_0 = conv2d_bn(x, 192, 1)
    branch_1 = conv2d_bn(x, 192, 1)
    branch_1 = conv2d_bn(branch_1, 224, (1, 3))
    branch_1 = conv2d_bn(branch_1, 256, (3, 1))
    return add_scaled_residual(x, [branch_0, branch_1], scale, f"block8_{block_idx}", activation)


def add_scaled_residual(x, branches, scale, block_name, activation="relu"):
    """Concatenates the branches, projects them back to x's channels (1x1 conv with bias), scales
    that residual by `scale` and adds it to x."""
    mixed = layers.Concatenate(name=f"{block_name}_mixed")(branches)
    up = conv2d_bn(mixed, x.shape[-1], 1, activation=None, use_bias=True, name=f"{block_name}_conv")
    up = layers.Rescaling(scale, name=f"{block_name}_scale")(up)
    x = layers.Add(name=block_name)([x, up])
    if activation is not None:
        x = layers.Activation(activation, name=f"{block_name}_ac")(x)
    return x


def preprocess_input(x, data_format=None):
    """Scales RGB pixels from 0-255 to [-1, 1]; the caller's array is left unchanged."""
    return imagenet.preprocess_input(x, mode="tf", data_format=data_format)
