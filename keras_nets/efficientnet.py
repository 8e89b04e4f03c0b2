"""EfficientNet-B0 to -B7, layer by layer.

Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks" (ICML
2019). B0 is a stack of MBConv blocks (MobileNetV2's inverted residual with squeeze-excite and
swish, table 1 of the paper); B1-B7 scale it up together in width (channels, times the width
coefficient, rounded to multiples of 8), depth (each stage's blocks, times the depth coefficient,
rounded up) and resolution (the input size). Layer names and weighted-layer order are those of
`keras.applications.efficientnet`, so the published `efficientnetb<k>[_notop].h5` files load with
a plain `model.load_weights(path)`.

As in Keras, the input scaling is part of the model, so `preprocess_input` returns its input
unchanged: a Rescaling to [0, 1], then a Normalization whose mean and variance are weights. The
published files hold the ImageNet mean and, in place of the variance, the standard deviation
(tensorflow/tensorflow#49930), so with `weights="imagenet"` a third layer multiplies by
1 / sqrt(std), as Keras does: the whole is then (x / 255 - mean) / std. Keras adds that
correction only with `weights="imagenet"`, and so does this module: weights of your own saved
from such a model need it too, so keep them as a whole `.keras` model (the correction is one of
its layers) rather than loading a weights file through `weights=path`.
"""

import math

from keras import layers

from keras_nets.core import builder
from keras_nets.core.blocks import make_divisible, squeeze_excite, stride2_padding
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

# Width coefficient, depth coefficient and dropout before the classifier of each variant, as the
# paper and Keras' builders give them; the input size is the registry's `default_size`.
SCALING = {
    "efficientnet_b0": (1.0, 1.0, 0.2),
    "efficientnet_b1": (1.0, 1.1, 0.2),
    "efficientnet_b2": (1.1, 1.2, 0.3),
    "efficientnet_b3": (1.2, 1.4, 0.3),
    "efficientnet_b4": (1.4, 1.8, 0.4),
    "efficientnet_b5": (1.6, 2.2, 0.4),
    "efficientnet_b6": (1.8, 2.6, 0.5),
    "efficientnet_b7": (2.0, 3.1, 0.5),
}
# EfficientNet-B0's seven stages (table 1 of the paper): expansion ratio, kernel, stride of the
# first block, input and output channels, blocks; each row's output at 224x224 on the right.
STAGES = (
    (1, 3, 1, 32, 16, 1),  # MBConv1 3x3 ................................... 112x112x16
    (6, 3, 2, 16, 24, 2),  # MBConv6 3x3 ..................................... 56x56x24
    (6, 5, 2, 24, 40, 2),  # MBConv6 5x5 ..................................... 28x28x40
    (6, 3, 2, 40, 80, 3),  # MBConv6 3x3 ..................................... 14x14x80
    (6, 5, 1, 80, 112, 3),  # MBConv6 5x5 .................................... 14x14x112
    (6, 5, 2, 112, 192, 4),  # MBConv6 5x5 .................................... 7x7x192
    (6, 3, 1, 192, 320, 1),  # MBConv6 3x3 .................................... 7x7x320
)
SE_RATIO = 0.25  # squeeze-excite to a quarter of the block's input channels
DROP_CONNECT_RATE = 0.2  # stochastic depth: block b of n skips its branch at rate 0.2 * b / n
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
# Keras' initializers, for training from scratch: He-like on the fan-out, truncated normal.
CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}

# Evaluation pipeline: Keras' figures are the paper's, measured with the TPU reference's
# preprocessing (tensorflow/tpu, models/official/efficientnet/preprocessing.py,
# `_decode_and_center_crop`): a central square of size / (size + 32) of the shorter side, resized
# bicubically to size x size. Hence crop_pct = size / (size + 32) and bicubic, as timm's
# tf_efficientnet_b* configs have it (0.875 for B0, up to 0.949 for B7).
# Feature levels: the last block of stages 1, 2, 3 and 5 (strides 2, 4, 8, 16; its letter grows
# with the variant's depth), as timm's EfficientNet features, and at stride 32 the last activation
# (top_activation, also Grad-CAM's default layer), as MobileNetV2's and V3's P5 here. The blocks
# unfrozen first: from the stride-32 stages on (block6a), or from the stride-16 ones (block4a).


@register_model(
    "efficientnet_b0", default_size=224, min_size=32, preprocessing="none",
    crop_pct=224 / 256, interpolation="bicubic", unfreeze_prefixes=("block6a", "block4a"),
    feature_layers=dict(P1="block1a_project_bn", P2="block2b_add", P3="block3b_add", P4="block5c_add", P5="top_activation"),
)
def EfficientNetB0(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb0"):
    return EfficientNet("efficientnet_b0", locals())


@register_model(
    "efficientnet_b1", default_size=240, min_size=32, preprocessing="none",
    crop_pct=240 / 272, interpolation="bicubic", unfreeze_prefixes=("block6a", "block4a"),
    feature_layers=dict(P1="block1b_add", P2="block2c_add", P3="block3c_add", P4="block5d_add", P5="top_activation"),
)
def EfficientNetB1(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb1"):
    return EfficientNet("efficientnet_b1", locals())


@register_model(
    "efficientnet_b2", default_size=260, min_size=32, preprocessing="none",
    crop_pct=260 / 292, interpolation="bicubic", unfreeze_prefixes=("block6a", "block4a"),
    feature_layers=dict(P1="block1b_add", P2="block2c_add", P3="block3c_add", P4="block5d_add", P5="top_activation"),
)
def EfficientNetB2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb2"):
    return EfficientNet("efficientnet_b2", locals())


@register_model(
    "efficientnet_b3", default_size=300, min_size=32, preprocessing="none",
    crop_pct=300 / 332, interpolation="bicubic", unfreeze_prefixes=("block6a", "block4a"),
    feature_layers=dict(P1="block1b_add", P2="block2c_add", P3="block3c_add", P4="block5e_add", P5="top_activation"),
)
def EfficientNetB3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb3"):
    return EfficientNet("efficientnet_b3", locals())


@register_model(
    "efficientnet_b4", default_size=380, min_size=32, preprocessing="none",
    crop_pct=380 / 412, interpolation="bicubic", unfreeze_prefixes=("block6a", "block4a"),
    feature_layers=dict(P1="block1b_add", P2="block2d_add", P3="block3d_add", P4="block5f_add", P5="top_activation"),
)
def EfficientNetB4(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb4"):
    return EfficientNet("efficientnet_b4", locals())


@register_model(
    "efficientnet_b5", default_size=456, min_size=32, preprocessing="none",
    crop_pct=456 / 488, interpolation="bicubic", unfreeze_prefixes=("block6a", "block4a"),
    feature_layers=dict(P1="block1c_add", P2="block2e_add", P3="block3e_add", P4="block5g_add", P5="top_activation"),
)
def EfficientNetB5(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb5"):
    return EfficientNet("efficientnet_b5", locals())


@register_model(
    "efficientnet_b6", default_size=528, min_size=32, preprocessing="none",
    crop_pct=528 / 560, interpolation="bicubic", unfreeze_prefixes=("block6a", "block4a"),
    feature_layers=dict(P1="block1c_add", P2="block2f_add", P3="block3f_add", P4="block5h_add", P5="top_activation"),
)
def EfficientNetB6(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb6"):
    return EfficientNet("efficientnet_b6", locals())


@register_model(
    "efficientnet_b7", default_size=600, min_size=32, preprocessing="none",
    crop_pct=600 / 632, interpolation="bicubic", unfreeze_prefixes=("block6a", "block4a"),
    feature_layers=dict(P1="block1d_add", P2="block2g_add", P3="block3g_add", P4="block5j_add", P5="top_activation"),
)
def EfficientNetB7(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb7"):
    return EfficientNet("efficientnet_b7", locals())


DOC = """Builds EfficientNet-B{k} ({parameters} parameters; {size}x{size} RGB, 0-255).

    Args:
      include_top: whether to end with the 1000-class ImageNet classifier.
      weights: None (random initialisation), "imagenet" (published weights, downloaded once to
        the Keras cache) or the path of a weights file (see the module's docstring).
      input_tensor: optional Keras tensor to use as the model's input.
      input_shape: (height, width, 3), each at least 32; default ({size}, {size}, 3) with the
        top, any size without it. With ImageNet weights and the top it must be ({size}, {size}, 3).
      pooling: with `include_top=False`: None (the {cells}x{cells}x{channels} feature map at
        {size}x{size}), "avg" or "max" (a {channels}-vector).
      classes: number of classes of the top classifier (1000 with ImageNet weights).
      classifier_activation: activation of the top layer; None returns logits.
      name: the model's name.
    """


def _doc(k, parameters, size, channels):
    cells = math.ceil(size / 32)
    return DOC.format(k=k, parameters=parameters, size=size, cells=cells, channels=channels)


EfficientNetB0.__doc__ = _doc(0, "5.3M", 224, 1280)
EfficientNetB1.__doc__ = _doc(1, "7.9M", 240, 1280)
EfficientNetB2.__doc__ = _doc(2, "9.2M", 260, 1408)
EfficientNetB3.__doc__ = _doc(3, "12.3M", 300, 1536)
EfficientNetB4.__doc__ = _doc(4, "19.5M", 380, 1792)
EfficientNetB5.__doc__ = _doc(5, "30.6M", 456, 2048)
EfficientNetB6.__doc__ = _doc(6, "43.3M", 528, 2304)
EfficientNetB7.__doc__ = _doc(7, "66.7M", 600, 2560)


def EfficientNet(model_name, arguments):
    """The stem, B0's seven stages scaled by the variant's coefficients, the last 1x1
    convolution and the top, for the builder `arguments` of EfficientNetB0 ... B7.

    Shape comments follow EfficientNet-B0 at 224x224.
    """
    width_coefficient, depth_coefficient, dropout_rate = SCALING[model_name]
    build = builder.start(model_name, arguments)

    def filters(channels):  # B0's channels, widened and rounded to a multiple of 8
        return make_divisible(channels * width_coefficient)

    def repeats(blocks):  # B0's blocks in a stage, deepened and rounded up
        return math.ceil(depth_coefficient * blocks)

    # Preprocessing in the graph: 0-255 to [0, 1], minus the mean, over the std --- 224x224x3
    x = layers.Rescaling(1.0 / 255.0)(build.input)
    x = layers.Normalization(axis=3)(x)  # (x - mean) / sqrt(variance), both loaded weights
    if arguments["weights"] == "imagenet":  # the published variance is the std: see above
        x = layers.Rescaling([1.0 / math.sqrt(stddev) for stddev in IMAGENET_STDDEV_RGB])(x)

    # Stem: 3x3/2 convolution ------------------------------------------ 224x224x3
    x = layers.ZeroPadding2D(padding=stride2_padding(x, 3), name="stem_conv_pad")(x)
    x = layers.Conv2D(
        filters(32), 3, strides=2, padding="valid", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name="stem_conv",
    )(x)
    x = layers.BatchNormalization(axis=3, name="stem_bn")(x)
    x = layers.Activation("swish", name="stem_activation")(x)  # 112x112x32

    # Stages 1-7: MBConv blocks (STAGES), named block1a, block1b, ..., block7a ------- 112x112x32
    total = sum(repeats(stage[-1]) for stage in STAGES)
    index = 0  # of the block among all, for its drop rate
    for stage, (expansion, kernel_size, strides, filters_in, filters_out, blocks) in enumerate(
        STAGES, start=1
    ):
        filters_in, filters_out = filters(filters_in), filters(filters_out)
        for j in range(repeats(blocks)):  # the first block strides and changes the channels
            x = mbconv_block(
                x,
                filters_in if j == 0 else filters_out,
                filters_out,
                kernel_size,
                strides if j == 0 else 1,
                expansion,
                drop_rate=DROP_CONNECT_RATE * index / total,
                name=f"block{stage}{chr(ord('a') + j)}_",
            )
            index += 1
    # 7x7x320

    # Last 1x1 convolution to 1280 channels (widened) ------------------ 7x7x320
    x = layers.Conv2D(
        filters(1280), 1, padding="same", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name="top_conv",
    )(x)
    x = layers.BatchNormalization(axis=3, name="top_bn")(x)
    x = layers.Activation("swish", name="top_activation")(x)  # 7x7x1280

    if build.include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name="top_dropout")(x)
        x = layers.Dense(
            build.classes, activation=build.classifier_activation,
            kernel_initializer=DENSE_KERNEL_INITIALIZER, name="predictions",
        )(x)  # 1000 classes
    else:
        x = build.pooled_features(x, named=True)
    return build.finish(x)


def mbconv_block(inputs, filters_in, filters_out, kernel_size, strides, expansion, drop_rate, name):
    """Expand (1x1, swish), filter (k x k depthwise, swish), squeeze-excite, project (1x1, linear).

    Blocks with an expansion ratio of 1 (stage 1) have no expansion convolution. When the block
    keeps its shape it adds its input back, its branch dropped whole at `drop_rate` in training
    (stochastic depth: a Dropout whose noise shape is one value per image).
    """
    filters = filters_in * expansion
    x = inputs
    if expansion != 1:
        x = layers.Conv2D(
            filters, 1, padding="same", use_bias=False,
            kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}expand_conv",
        )(x)
        x = layers.BatchNormalization(axis=3, name=f"{name}expand_bn")(x)
        x = layers.Activation("swish", name=f"{name}expand_activation")(x)

    if strides == 2:
        x = layers.ZeroPadding2D(
            padding=stride2_padding(x, kernel_size), name=f"{name}dwconv_pad"
        )(x)
    x = layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="valid" if strides == 2 else "same",
        use_bias=False, depthwise_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}dwconv",
    )(x)
    x = layers.BatchNormalization(axis=3, name=f"{name}bn")(x)
    x = layers.Activation("swish", name=f"{name}activation")(x)

    x = squeeze_excite(x, max(1, int(filters_in * SE_RATIO)), name, CONV_KERNEL_INITIALIZER)

    x = layers.Conv2D(
        filters_out, 1, padding="same", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}project_conv",
    )(x)
    x = layers.BatchNormalization(axis=3, name=f"{name}project_bn")(x)
    if strides == 1 and filters_in == filters_out:
        if drop_rate > 0:
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
        x = layers.Add(name=f"{name}add")([x, inputs])
    return x


def preprocess_input(x, data_format=None):
    """Returns `x` unchanged: the model scales and normalises its own 0-255 input."""
    return x
