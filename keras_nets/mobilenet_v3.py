"""MobileNetV3 Small and Large, layer by layer.

Howard et al., "Searching for MobileNetV3" (ICCV 2019). Layer names and weighted-layer order are
those of `keras.applications.MobileNetV3Small` / `MobileNetV3Large`, so the published
`weights_mobilenet_v3_<small|large>[_minimalistic]_224_<alpha>_float.h5` files load with a plain
`model.load_weights(path)`.

As in Keras, the input scaling is part of the model (a Rescaling layer to [-1, 1], unless
`include_preprocessing=False`), so `preprocess_input` returns its input unchanged. Hard-swish and
hard-sigmoid are the built-in Keras activations, so a model saves and loads as `.keras` without
custom objects.
"""

from keras import layers

from keras_nets.core import builder
from keras_nets.core.blocks import MOBILENET_BN as BN
from keras_nets.core.blocks import check_width_multiplier, make_divisible, stride2_padding
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

DOC = """Builds MobileNetV3-{size} ({parameters} parameters at alpha 1.0; 224x224 RGB, 0-255).

    Args:
      input_shape: (height, width, 3), each at least 32; default (224, 224, 3) with the top,
        any size without it. With ImageNet weights and the top it must be (224, 224, 3).
      alpha: width multiplier (published: 0.75 and 1.0; 1.0 only when minimalistic).
      minimalistic: the variant without squeeze-excite, hard-swish and 5x5 convolutions.
      include_top: whether to end with the 1000-class ImageNet classifier.
      weights: None (random initialisation), "imagenet" (published weights, downloaded once to
        the Keras cache) or the path of a weights file.
      input_tensor: optional Keras tensor to use as the model's input.
      classes: number of classes of the top classifier (1000 with ImageNet weights).
      pooling: with `include_top=False`: None (the last feature map), "avg" or "max" (a vector).
      dropout_rate: dropout rate before the classifier (0 leaves the Dropout layer out).
      classifier_activation: activation of the top layer; None returns logits.
      include_preprocessing: whether the model scales its 0-255 input to [-1, 1] itself.
      name: the model's name.
    """


# Evaluation pipeline: the accuracies Keras quotes for MobileNetV3 are TF-slim's (tensorflow/models
# research/slim/nets/mobilenet), measured with inception_preprocessing.preprocess_for_eval: a
# central 0.875 crop resized bilinearly. Hence crop_pct 0.875 (the default) and bilinear.


@register_model(
    "mobilenet_v3_small", default_size=224, min_size=32, preprocessing="none",
    interpolation="bilinear",  # TF-slim's evaluation, see above
    unfreeze_prefixes=("expanded_conv_8", "expanded_conv_3"),
    feature_layers=dict(P1="conv_act", P2="expanded_conv_project_bn", P3="expanded_conv_2_add", P4="expanded_conv_7_add", P5="conv_1_act"),
)
def MobileNetV3Small(input_shape=None, alpha=1.0, minimalistic=False, include_top=True,
                     weights="imagenet", input_tensor=None, classes=1000, pooling=None,
                     dropout_rate=0.2, classifier_activation="softmax",
                     include_preprocessing=True, name="MobileNetV3Small"):
    return MobileNetV3("small", small_stack, 1024, locals())


@register_model(
    "mobilenet_v3_large", default_size=224, min_size=32, preprocessing="none",
    interpolation="bilinear",  # TF-slim's evaluation, see above
    unfreeze_prefixes=("expanded_conv_12", "expanded_conv_6"),
    feature_layers=dict(P1="expanded_conv_add", P2="expanded_conv_2_add", P3="expanded_conv_5_add", P4="expanded_conv_11_add", P5="conv_1_act"),
)
def MobileNetV3Large(input_shape=None, alpha=1.0, minimalistic=False, include_top=True,
                     weights="imagenet", input_tensor=None, classes=1000, pooling=None,
                     dropout_rate=0.2, classifier_activation="softmax",
                     include_preprocessing=True, name="MobileNetV3Large"):
    return MobileNetV3("large", large_stack, 1280, locals())


MobileNetV3Small.__doc__ = DOC.format(size="Small", parameters="2.55M")
MobileNetV3Large.__doc__ = DOC.format(size="Large", parameters="5.51M")


def small_stack(x, alpha, kernel, activation, se_ratio):
    """MobileNetV3-Small's inverted residual blocks (table 2 of the paper)."""

    def depth(d):
        return make_divisible(d * alpha)

    # expansion, filters, kernel, stride, squeeze-excite, activation, block ---- 112x112x16
    x = inverted_res_block(x, 1, depth(16), 3, 2, se_ratio, "relu", 0)  # 56x56x16
    x = inverted_res_block(x, 72 / 16, depth(24), 3, 2, None, "relu", 1)  # 28x28x24
    x = inverted_res_block(x, 88 / 24, depth(24), 3, 1, None, "relu", 2)
    x = inverted_res_block(x, 4, depth(40), kernel, 2, se_ratio, activation, 3)  # 14x14x40
    x = inverted_res_block(x, 6, depth(40), kernel, 1, se_ratio, activation, 4)
    x = inverted_res_block(x, 6, depth(40), kernel, 1, se_ratio, activation, 5)
    x = inverted_res_block(x, 3, depth(48), kernel, 1, se_ratio, activation, 6)  # 14x14x48
    x = inverted_res_block(x, 3, depth(48), kernel, 1, se_ratio, activation, 7)
    x = inverted_res_block(x, 6, depth(96), kernel, 2, se_ratio, activation, 8)  # 7x7x96
    x = inverted_res_block(x, 6, depth(96), kernel, 1, se_ratio, activation, 9)
    return inverted_res_block(x, 6, depth(96), kernel, 1, se_ratio, activation, 10)


def large_stack(x, alpha, kernel, activation, se_ratio):
    """MobileNetV3-Large's inverted residual blocks (table 1 of the paper)."""

    def depth(d):
        return make_divisible(d * alpha)

    # expansion, filters, kernel, stride, squeeze-excite, activation, block ---- 112x112x16
    x = inverted_res_block(x, 1, depth(16), 3, 1, None, "relu", 0)
    x = inverted_res_block(x, 4, depth(24), 3, 2, None, "relu", 1)  # 56x56x24
    x = inverted_res_block(x, 3, depth(24), 3, 1, None, "relu", 2)
    x = inverted_res_block(x, 3, depth(40), kernel, 2, se_ratio, "relu", 3)  # 28x28x40
    x = inverted_res_block(x, 3, depth(40), kernel, 1, se_ratio, "relu", 4)
    x = inverted_res_block(x, 3, depth(40), kernel, 1, se_ratio, "relu", 5)
    x = inverted_res_block(x, 6, depth(80), 3, 2, None, activation, 6)  # 14x14x80
    x = inverted_res_block(x, 2.5, depth(80), 3, 1, None, activation, 7)
    x = inverted_res_block(x, 2.3, depth(80), 3, 1, None, activation, 8)
    x = inverted_res_block(x, 2.3, depth(80), 3, 1, None, activation, 9)
    x = inverted_res_block(x, 6, depth(112), 3, 1, se_ratio, activation, 10)  # 14x14x112
    x = inverted_res_block(x, 6, depth(112), 3, 1, se_ratio, activation, 11)
    x = inverted_res_block(x, 6, depth(160), kernel, 2, se_ratio, activation, 12)  # 7x7x160
    x = inverted_res_block(x, 6, depth(160), kernel, 1, se_ratio, activation, 13)
    return inverted_res_block(x, 6, depth(160), kernel, 1, se_ratio, activation, 14)


def MobileNetV3(model_type, stack, last_point_ch, arguments):
    """The stem, the `stack` of inverted residual blocks, the last convolutions and the top, for
    the builder `arguments` of MobileNetV3Small / MobileNetV3Large."""
    alpha, minimalistic = arguments["alpha"], arguments["minimalistic"]
    check_width_multiplier(alpha)
    model_name = f"mobilenet_v3_{model_type}"
    weights_variant = None
    if arguments["weights"] == "imagenet":
        weights_variant = published_variant(model_type, alpha, minimalistic)
    build = builder.start(model_name, arguments, weights_variant=weights_variant)
    if minimalistic:  # 3x3 kernels, ReLU, no squeeze-excite
        kernel, activation, se_ratio = 3, "relu", None
    else:
        kernel, activation, se_ratio = 5, "hard_swish", 0.25

    # Stem ------------------------------------------------------------- 224x224x3
    x = build.input
    if arguments["include_preprocessing"]:
        x = layers.Rescaling(scale=1.0 / 127.5, offset=-1.0)(x)  # 0-255 to [-1, 1]
    x = layers.Conv2D(16, 3, strides=(2, 2), padding="same", use_bias=False, name="conv")(x)
    x = layers.BatchNormalization(name="conv_bn", **BN)(x)
    x = activate(x, activation, name="conv_act")  # 112x112x16

    x = stack(x, alpha, kernel, activation, se_ratio)  # 7x7x96 (small) or 7x7x160 (large)

    # Last stage: 1x1 convolution to six times the channels ------------ 7x7
    x = layers.Conv2D(make_divisible(x.shape[-1] * 6), 1, padding="same", use_bias=False, name="conv_1")(x)
    x = layers.BatchNormalization(name="conv_1_bn", **BN)(x)
    x = activate(x, activation, name="conv_1_act")  # 7x7x576 (small) or 7x7x960 (large)

    if build.include_top:
        if alpha > 1.0:
            last_point_ch = make_divisible(last_point_ch * alpha)
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Conv2D(last_point_ch, 1, padding="same", use_bias=True, name="conv_2")(x)
        x = activate(x, activation)  # 1x1x1024 (small) or 1x1x1280 (large)
        if arguments["dropout_rate"] > 0:
            x = layers.Dropout(arguments["dropout_rate"])(x)
        x = layers.Conv2D(build.classes, 1, padding="same", name="logits")(x)
        x = layers.Flatten()(x)
        x = layers.Activation(build.classifier_activation, name="predictions")(x)  # 1000 classes
    else:
        x = build.pooled_features(x, named=True)
    return build.finish(x)


def inverted_res_block(x, expansion, filters, kernel_size, stride, se_ratio, activation, block):
    """Expand (1x1), depthwise (k x k), optional squeeze-excite, project (1x1), maybe add.

    Block 0 has no expansion convolution and its layers are named "expanded_conv_..." without a
    number, as in the reference.
    """
    shortcut = x
    in_filters = x.shape[-1]
    prefix = f"expanded_conv_{block}_" if block else "expanded_conv_"
    if block:
        x = layers.Conv2D(
            make_divisible(in_filters * expansion), 1, padding="same", use_bias=False, name=f"{prefix}expand"
        )(x)
        x = layers.BatchNormalization(name=f"{prefix}expand_bn", **BN)(x)
        x = activate(x, activation)
    if stride == 2:
        x = layers.ZeroPadding2D(padding=stride2_padding(x, kernel_size), name=f"{prefix}depthwise_pad")(x)
    x = layers.DepthwiseConv2D(
        kernel_size,
        strides=stride,
        padding="same" if stride == 1 else "valid",
        use_bias=False,
        name=f"{prefix}depthwise",
    )(x)
    x = layers.BatchNormalization(name=f"{prefix}depthwise_bn", **BN)(x)
    x = activate(x, activation)
    if se_ratio:
        x = squeeze_excite(x, make_divisible(in_filters * expansion), se_ratio, prefix)
    x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{prefix}project")(x)
    x = layers.BatchNormalization(name=f"{prefix}project_bn", **BN)(x)
    if stride == 1 and in_filters == filters:
        x = layers.Add(name=f"{prefix}add")([shortcut, x])
    return x


def squeeze_excite(inputs, filters, se_ratio, prefix):
    """Global average pool, 1x1 reduce with ReLU, 1x1 expand with hard-sigmoid, rescale inputs."""
    x = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool")(inputs)
    x = layers.Conv2D(
        make_divisible(filters * se_ratio), 1, padding="same", name=f"{prefix}squeeze_excite_conv"
    )(x)
    x = layers.ReLU(name=f"{prefix}squeeze_excite_relu")(x)
    x = layers.Conv2D(filters, 1, padding="same", name=f"{prefix}squeeze_excite_conv_1")(x)
    x = layers.Activation("hard_sigmoid")(x)  # relu6(x + 3) / 6
    return layers.Multiply(name=f"{prefix}squeeze_excite_mul")([inputs, x])


def activate(x, activation, name=None):
    """ReLU as a ReLU layer, hard-swish (x * relu6(x + 3) / 6) as the built-in activation."""
    if activation == "relu":
        return layers.ReLU(name=name)(x)
    return layers.Activation(activation, name=name)(x)


def published_variant(model_type, alpha, minimalistic):
    """The manifest key of the published weights, e.g. "mobilenet_v3_large_minimalistic_1.0"."""
    published = (1.0,) if minimalistic else (0.75, 1.0)
    if alpha not in published:
        raise ValueError(
            f"alpha={alpha!r}: published ImageNet weights exist for alpha "
            f"{' and '.join(map(str, published))} with minimalistic={minimalistic}; use "
            "weights=None for other values"
        )
    variant = "_minimalistic" if minimalistic else ""
    return f"mobilenet_v3_{model_type}{variant}_{float(alpha)}"


def preprocess_input(x, data_format=None):
    """Returns `x` unchanged: the model scales its own input (see `include_preprocessing`)."""
    return x
