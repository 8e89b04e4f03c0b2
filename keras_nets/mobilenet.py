"""MobileNet (V1), layer by layer.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications" (2017). Layer names and weighted-layer order are those of
`keras.applications.MobileNet`, so the sixteen published `mobilenet_<alpha>_<rows>_tf.h5` files
(alpha 0.25, 0.5, 0.75, 1.0 at 128, 160, 192 and 224 pixels) load with a plain
`model.load_weights(path)`. The classifier is a 1x1 convolution on the pooled features, as there.
"""

from keras import layers

from keras_nets.core import builder, imagenet
from keras_nets.core.blocks import check_width_multiplier
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

PUBLISHED_ALPHAS = (0.25, 0.5, 0.75, 1.0)
PUBLISHED_SIZES = (128, 160, 192, 224)


@register_model(
    "mobilenet", default_size=224, min_size=32, preprocessing="tf",
    unfreeze_prefixes=("conv_dw_12", "conv_dw_7"),
    feature_layers=dict(P1="conv_pw_1_relu", P2="conv_pw_3_relu", P3="conv_pw_5_relu", P4="conv_pw_11_relu", P5="conv_pw_13_relu"),
)
def MobileNet(
    input_shape=None,
    alpha=1.0,
    depth_multiplier=1,
    dropout=1e-3,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """Builds MobileNet (4.25M parameters at alpha 1.0; inputs scaled to [-1, 1]).

    Args:
      input_shape: (height, width, 3), each at least 32. A square 128, 160, 192 or 224 picks the
        published weights of that size; anything else uses 224 (with `include_top=True` and
        ImageNet weights the shape must be one of the four).
      alpha: width multiplier: every layer has `alpha` times the paper's filters (published: 0.25,
        0.5, 0.75, 1.0).
      depth_multiplier: depthwise output channels per input channel (1 with ImageNet weights).
      dropout: dropout rate before the classifier.
      include_top: whether to end with the 1000-class ImageNet classifier.
      weights: None (random initialisation), "imagenet" (published weights, downloaded once to
        the Keras cache) or the path of a weights file.
      input_tensor: optional Keras tensor to use as the model's input.
      pooling: with `include_top=False`: None (the 7x7x(1024 alpha) feature map at 224x224), "avg"
        or "max" (a vector).
      classes: number of classes of the top classifier (1000 with ImageNet weights).
      classifier_activation: activation of the top layer; None returns logits.
      name: the model's name; default `mobilenet_<alpha>_<rows>`, e.g. "mobilenet_1.00_224".
    """
    check_width_multiplier(alpha)
    if not builder.is_integer(depth_multiplier) or depth_multiplier < 1:
        raise ValueError(f"depth_multiplier={depth_multiplier!r}: expected a positive integer")
    rows = builder.published_size(input_shape, PUBLISHED_SIZES, 224, input_tensor=input_tensor)
    weights_variant = None
    if weights == "imagenet":
        weights_variant = published_variant(alpha, depth_multiplier, rows)
    build = builder.start(
        "mobilenet", locals(), default_size=rows, weights_variant=weights_variant
    )

    # A full convolution, then thirteen depthwise-separable blocks ----- 224x224x3
    x = layers.Conv2D(
        int(32 * alpha), (3, 3), strides=(2, 2), padding="same", use_bias=False, name="conv1"
    )(build.input)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)  # 112x112x32
    x = depthwise_block(x, 64, alpha, depth_multiplier, block=1)  # 112x112x64

    x = depthwise_block(x, 128, alpha, depth_multiplier, block=2, strides=2)
    x = depthwise_block(x, 128, alpha, depth_multiplier, block=3)  # 56x56x128

    x = depthwise_block(x, 256, alpha, depth_multiplier, block=4, strides=2)
    x = depthwise_block(x, 256, alpha, depth_multiplier, block=5)  # 28x28x256

    x = depthwise_block(x, 512, alpha, depth_multiplier, block=6, strides=2)
    for block in range(7, 12):
        x = depthwise_block(x, 512, alpha, depth_multiplier, block=block)  # 14x14x512

    x = depthwise_block(x, 1024, alpha, depth_multiplier, block=12, strides=2)
    x = depthwise_block(x, 1024, alpha, depth_multiplier, block=13)  # 7x7x1024

    # Classifier: a 1x1 convolution on the pooled features ------------- 1x1x1024
    if build.include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(build.classes, (1, 1), padding="same", name="conv_preds")(x)
        x = layers.Reshape((build.classes,), name="reshape_2")(x)
        x = layers.Activation(build.classifier_activation, name="predictions")(x)  # 1000 classes
    else:
        x = build.pooled_features(x)

    if weights != "imagenet":
        rows = build.input.shape[1]  # the model's own size; with ImageNet weights, theirs
    return build.finish(x, name=name or f"mobilenet_{alpha:0.2f}_{rows}")


def depthwise_block(x, filters, alpha, depth_multiplier, block, strides=1):
    """3x3 depthwise convolution, BN, ReLU6; 1x1 pointwise convolution, BN, ReLU6.

    A stride-2 block pads one pixel at the bottom and right and convolves "valid", as the
    reference does, instead of "same" padding on all sides.
    """
    if strides == 2:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block}")(x)
    x = layers.DepthwiseConv2D(
        (3, 3),
        padding="same" if strides == 1 else "valid",
        depth_multiplier=depth_multiplier,
        strides=(strides, strides),
        use_bias=False,
        name=f"conv_dw_{block}",
    )(x)
    x = layers.BatchNormalization(name=f"conv_dw_{block}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block}_relu")(x)
    x = layers.Conv2D(
        int(filters * alpha), (1, 1), padding="same", use_bias=False, name=f"conv_pw_{block}"
    )(x)
    x = layers.BatchNormalization(name=f"conv_pw_{block}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block}_relu")(x)


def published_variant(alpha, depth_multiplier, rows):
    """The manifest key of the published weights for these arguments, e.g. "mobilenet_0.5_160"."""
    if depth_multiplier != 1:
        raise ValueError(
            f"depth_multiplier={depth_multiplier!r}: the published ImageNet weights have "
            "depth_multiplier=1; use weights=None for other values"
        )
    if alpha not in PUBLISHED_ALPHAS:
        raise ValueError(
            f"alpha={alpha!r}: published ImageNet weights exist for alpha 0.25, 0.5, 0.75 and "
            "1.0; use weights=None for other values"
        )
    return f"mobilenet_{float(alpha)}_{rows}"


def preprocess_input(x, data_format=None):
    """Scales RGB pixels from 0-255 to [-1, 1]; the caller's array is left unchanged."""
    return imagenet.preprocess_input(x, mode="tf", data_format=data_format)
