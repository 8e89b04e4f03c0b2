"""ShuffleNet V2, layer by layer.

Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design" (ECCV 2018),
Table 5 and Figure 3 (c), (d). No Keras ImageNet weights are published for it: `weights` is None or
the path of your own weights file.

Channel split and channel shuffle are plain `keras.ops` calls in the graph (a channel slice and a
fixed channel permutation), so they work at any input size and a model saves and loads as `.keras`
without custom objects.
"""

import numpy as np
from keras import layers, ops

from keras_nets.core import builder, imagenet
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

# Output channels of stages 2, 3, 4 and of conv5, per scale (the paper's Table 5).
STAGE_CHANNELS = {
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (244, 488, 976, 2048),
}
STAGE_REPEATS = (4, 8, 4)


@register_model(
    "shufflenet_v2", default_size=224, min_size=32, preprocessing="torch",
    published_weights=False, unfreeze_prefixes=("stage4", "stage3"),
    feature_layers=dict(P1="conv1_relu", P2="maxpool", P3="stage2_unit4_concat", P4="stage3_unit8_concat", P5="conv5_relu"),
)
@builder.with_args_doc(
    top="the `classes`-way classifier", imagenet=False,
    input_shape="(height, width, channels), each at least 32; only with `include_top=False`\n"
    "        may height and width be left None.",
    feature_map="the 7x7x1024 conv5 feature map at 224x224", vector="a vector",
    more="\n      scale: the network width, one of 0.5, 1.0, 1.5 or 2.0 (the paper's \"0.5x\" to"
    " \"2x\");\n        the default name is \"shufflenet_v2_<scale>x\", e.g. \"shufflenet_v2_1.0x\".",
)
def ShuffleNetV2(scale=1.0, include_top=True, weights=None, input_tensor=None, input_shape=None,
                 pooling=None, classes=1000, classifier_activation="softmax", name=None):
    """Builds ShuffleNet V2 (2.28M trainable parameters at scale 1.0; 224x224 inputs); no
    published ImageNet weights exist."""
    if scale not in STAGE_CHANNELS:
        raise ValueError(
            f"scale={scale!r}: expected one of {', '.join(map(str, STAGE_CHANNELS))}"
        )
    build = builder.start("shufflenet_v2", locals())
    *stage_channels, conv5_channels = STAGE_CHANNELS[scale]

    # conv1 and max pool ----------------------------------------------- 224x224x3
    x = layers.Conv2D(24, 3, strides=2, padding="same", use_bias=False, name="conv1")(build.input)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(name="conv1_relu")(x)  # 112x112x24
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="maxpool")(x)  # 56x56x24

    # Stages 2-4: one stride-2 unit, then basic units ------------------ 56x56x24
    for stage, (channels, repeats) in enumerate(zip(stage_channels, STAGE_REPEATS), start=2):
        x = downsampling_unit(x, channels, prefix=f"stage{stage}_unit1")
        for unit in range(2, repeats + 1):
            x = basic_unit(x, prefix=f"stage{stage}_unit{unit}")
    # 28x28 (stage 2), 14x14 (stage 3), 7x7 (stage 4) x 116, 232, 464 at scale 1.0

    x = layers.Conv2D(conv5_channels, 1, use_bias=False, name="conv5")(x)
    x = layers.BatchNormalization(name="conv5_bn")(x)
    x = layers.ReLU(name="conv5_relu")(x)  # 7x7x1024

    x = build.top(x, pool_name="global_pool")  # classes, or the features
    return build.finish(x, name=name or f"shufflenet_v2_{scale}x")


def basic_unit(x, prefix):
    """Figure 3 (c): split the channels in half; one half passes unchanged, the other goes
    through 1x1 conv, 3x3 depthwise conv, 1x1 conv; concatenate, then shuffle."""
    half = x.shape[-1] // 2
    shortcut, x = x[..., :half], x[..., half:]  # channel split
    x = pointwise(x, half, f"{prefix}_branch_conv1")
    x = depthwise(x, 1, f"{prefix}_branch_dwconv")
    x = pointwise(x, half, f"{prefix}_branch_conv2")
    x = layers.Concatenate(name=f"{prefix}_concat")([shortcut, x])
    return channel_shuffle(x)


def downsampling_unit(x, channels, prefix):
    """Figure 3 (d): no split; both branches see the whole input and halve the resolution, each
    giving half the output channels; concatenate, then shuffle."""
    half = channels // 2
    left = depthwise(x, 2, f"{prefix}_left_dwconv")
    left = pointwise(left, half, f"{prefix}_left_conv")

    right = pointwise(x, half, f"{prefix}_right_conv1")
    right = depthwise(right, 2, f"{prefix}_right_dwconv")
    right = pointwise(right, half, f"{prefix}_right_conv2")

    x = layers.Concatenate(name=f"{prefix}_concat")([left, right])
    return channel_shuffle(x)


def pointwise(x, filters, name):
    """1x1 convolution, BN, ReLU."""
    x = layers.Conv2D(filters, 1, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def depthwise(x, strides, name):
    """3x3 depthwise convolution and BN, without ReLU (the paper's guideline)."""
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def channel_shuffle(x, groups=2):
    """Reshape the channels to (groups, channels/groups), transpose, flatten: channel i of group g
    moves to position i * groups + g. Done as the equivalent fixed permutation of the channel
    axis, which needs no spatial sizes."""
    channels = x.shape[-1]
    order = np.arange(channels).reshape(groups, channels // groups).T.ravel()
    return ops.take(x, order.tolist(), axis=-1)


def preprocess_input(x, data_format=None):
    """Scales RGB pixels to [0, 1], then normalises with the ImageNet mean and standard deviation
    (the usual ShuffleNet training recipe); the caller's array is left unchanged."""
    return imagenet.preprocess_input(x, mode="torch", data_format=data_format)
