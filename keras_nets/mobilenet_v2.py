"""MobileNetV2, layer by layer.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (CVPR 2018).
Layer names and weighted-layer order are those of `keras.applications.MobileNetV2`, so the published
`mobilenet_v2_weights_tf_dim_ordering_tf_kernels_<alpha>_<rows>.h5` files (alpha 0.35, 0.5, 0.75
and 1.0 at 96, 128, 160, 192 and 224 pixels; alpha 1.3 and 1.4 at 224) load with a plain
`model.load_weights(path)`.
"""

from keras import layers

from keras_nets.core import builder, imagenet
from keras_nets.core.blocks import MOBILENET_BN as BN
from keras_nets.core.blocks import check_width_multiplier, make_divisible, stride2_padding
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

PUBLISHED_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
PUBLISHED_SIZES = (96, 128, 160, 192, 224)


@register_model(
    "mobilenet_v2", default_size=224, min_size=32, preprocessing="tf",
    unfreeze_prefixes=("block_13", "block_16"),
    feature_layers=dict(P1="expanded_conv_project_BN", P2="block_2_add", P3="block_5_add", P4="block_12_add", P5="out_relu"),
)
def MobileNetV2(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """Builds MobileNetV2 (3.5M parameters at alpha 1.0; inputs scaled to [-1, 1]).

    Args:
      input_shape: (height, width, 3), each at least 32. A square 96, 128, 160, 192 or 224
        selects the published weights of that size, anything else those of 224 (with
        `include_top=True` and ImageNet weights the shape must be one of the five).
      alpha: width multiplier: the layers have `alpha` times the paper's filters (published
        weights: 0.35, 0.5, 0.75, 1.0 at every size; 1.3, 1.4 at 224).
      include_top: whether to end with the 1000-class ImageNet classifier.
      weights: None (random initialisation), "imagenet" (published weights, downloaded once to
        the Keras cache) or the path of a weights file.
      input_tensor: optional Keras tensor to use as the model's input.
      pooling: with `include_top=False`: None (the 7x7x1280 feature map at 224x224, alpha 1.0),
        "avg" or "max" (a vector).
      classes: number of classes of the top classifier (1000 with ImageNet weights).
      classifier_activation: activation of the top layer; None returns logits.
      name: the model's name; default `mobilenetv2_<alpha>_<rows>`, e.g. "mobilenetv2_1.00_224".
    """
    check_width_multiplier(alpha)
    rows = builder.published_size(input_shape, PUBLISHED_SIZES, 224, input_tensor=input_tensor)
    weights_variant = published_variant(alpha, rows) if weights == "imagenet" else None
    build = builder.start(
        "mobilenet_v2", locals(), default_size=rows, weights_variant=weights_variant
    )

    # Stem: one full 3x3 convolution ----------------------------------- 224x224x3
    x = layers.Conv2D(
        make_divisible(32 * alpha), 3, strides=(2, 2), padding="same", use_bias=False, name="Conv1"
    )(build.input)
    x = layers.BatchNormalization(**BN, name="bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)  # 112x112x32

    # Inverted residual blocks (expansion t, filters c, stride s), table 2 of the paper
    x = inverted_res_block(x, expansion=1, filters=16, alpha=alpha, stride=1, block_id=0)  # 112x112x16

    x = inverted_res_block(x, expansion=6, filters=24, alpha=alpha, stride=2, block_id=1)
    x = inverted_res_block(x, expansion=6, filters=24, alpha=alpha, stride=1, block_id=2)  # 56x56x24

    x = inverted_res_block(x, expansion=6, filters=32, alpha=alpha, stride=2, block_id=3)
    x = inverted_res_block(x, expansion=6, filters=32, alpha=alpha, stride=1, block_id=4)
    x = inverted_res_block(x, expansion=6, filters=32, alpha=alpha, stride=1, block_id=5)  # 28x28x32

    x = inverted_res_block(x, expansion=6, filters=64, alpha=alpha, stride=2, block_id=6)
    x = inverted_res_block(x, expansion=6, filters=64, alpha=alpha, stride=1, block_id=7)
    x = inverted_res_block(x, expansion=6, filters=64, alpha=alpha, stride=1, block_id=8)
    x = inverted_res_block(x, expansion=6, filters=64, alpha=alpha, stride=1, block_id=9)  # 14x14x64

    x = inverted_res_block(x, expansion=6, filters=96, alpha=alpha, stride=1, block_id=10)
    x = inverted_res_block(x, expansion=6, filters=96, alpha=alpha, stride=1, block_id=11)
    x = inverted_res_block(x, expansion=6, filters=96, alpha=alpha, stride=1, block_id=12)  # 14x14x96

    x = inverted_res_block(x, expansion=6, filters=160, alpha=alpha, stride=2, block_id=13)
    x = inverted_res_block(x, expansion=6, filters=160, alpha=alpha, stride=1, block_id=14)
    x = inverted_res_block(x, expansion=6, filters=160, alpha=alpha, stride=1, block_id=15)  # 7x7x160

    x = inverted_res_block(x, expansion=6, filters=320, alpha=alpha, stride=1, block_id=16)  # 7x7x320

    # Last 1x1 convolution: 1280 channels, widened only for alpha > 1 --- 7x7x320
    last_block_filters = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = layers.Conv2D(last_block_filters, 1, use_bias=False, name="Conv_1")(x)
    x = layers.BatchNormalization(**BN, name="Conv_1_bn")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)  # 7x7x1280

    x = build.top(x, pool_name=None)  # 1000 classes, or the features; pool unnamed as there
    if weights != "imagenet":
        rows = build.input.shape[1]  # the model's own size; with ImageNet weights, theirs
    return build.finish(x, name=name or f"mobilenetv2_{alpha:0.2f}_{rows}")


def inverted_res_block(inputs, expansion, filters, alpha, stride, block_id):
    """Expand (1x1, ReLU6), filter (3x3 depthwise, ReLU6), project (1x1, linear).

    The projection is a linear bottleneck: no activation. When the block keeps its shape it adds
    its input back. Block 0 has no expansion and its layers are named "expanded_conv_...", the
    others "block_<id>_...".
    """
    in_channels = inputs.shape[-1]
    pointwise_filters = make_divisible(int(filters * alpha))
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"

    x = inputs
    if block_id:
        x = layers.Conv2D(
            expansion * in_channels, 1, padding="same", use_bias=False, name=f"{prefix}expand"
        )(x)
        x = layers.BatchNormalization(**BN, name=f"{prefix}expand_BN")(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)

    if stride == 2:
        x = layers.ZeroPadding2D(padding=stride2_padding(x, 3), name=f"{prefix}pad")(x)
    x = layers.DepthwiseConv2D(
        3,
        strides=stride,
        use_bias=False,
        padding="same" if stride == 1 else "valid",
        name=f"{prefix}depthwise",
    )(x)
    x = layers.BatchNormalization(**BN, name=f"{prefix}depthwise_BN")(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)

    x = layers.Conv2D(pointwise_filters, 1, padding="same", use_bias=False, name=f"{prefix}project")(x)
    x = layers.BatchNormalization(**BN, name=f"{prefix}project_BN")(x)

    if in_channels == pointwise_filters and stride == 1:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def published_variant(alpha, rows):
    """The manifest key of the published weights for `alpha` at rows x rows, e.g.
    "mobilenet_v2_0.35_96"."""
    if alpha not in PUBLISHED_ALPHAS:
        raise ValueError(
            f"alpha={alpha!r}: published ImageNet weights exist for alpha 0.35, 0.5, 0.75, 1.0, "
            "1.3 and 1.4; use weights=None for other values"
        )
    if alpha > 1.0 and rows != 224:
        raise ValueError(
            f"alpha={alpha!r} with input_shape=({rows}, {rows}, 3): the published alpha {alpha} "
            "weights are for 224x224 inputs only; alpha 0.35, 0.5, 0.75 and 1.0 also have 96, "
            "128, 160 and 192; use weights=None for other combinations"
        )
    return f"mobilenet_v2_{float(alpha)}_{rows}"


def preprocess_input(x, data_format=None):
    """Scales RGB pixels from 0-255 to [-1, 1]; the caller's array is left unchanged."""
    return imagenet.preprocess_input(x, mode="tf", data_format=data_format)
