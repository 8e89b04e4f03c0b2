"""EfficientNetV2-B0 to -B3, -S, -M and -L, layer by layer.

Tan and Le, "EfficientNetV2: Smaller Models and Faster Training" (ICML 2021). The early stages are
Fused-MBConv blocks (the expansion 1x1 and the depthwise kxk of an MBConv fused into one regular
kxk convolution, no squeeze-excite), the later ones MBConv blocks with squeeze-excite, as
EfficientNet's. S, M and L each have their own stage table (table 4 of the paper for S); B0-B3
share B0's, scaled in width (channels times the width coefficient, rounded to a multiple of 8) and
depth (blocks times the depth coefficient, rounded up). Layer names and weighted-layer order are
those of `keras.applications.efficientnet_v2`, so the published `efficientnetv2-<b0|...|l>[_notop].h5`
files load with a plain `model.load_weights(path)`.

As in Keras, the input scaling is part of the model (unless `include_preprocessing=False`), so
`preprocess_input` returns its input unchanged. It holds no weights and differs by variant, as
the weights were trained: B0-B3 take EfficientNet's (x / 255 - ImageNet mean) / ImageNet std when
the input has 3 channels, and scale to [-1, 1] (x / 128 - 1) otherwise; S, M and L always scale to
[-1, 1].
"""

import math

from keras import layers

from keras_nets.core import builder
from keras_nets.core.blocks import squeeze_excite
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

# Each variant's stage table (a key of STAGES), width and depth coefficients and default input
# size (the registry's `default_size` too), as Keras' builders give them.
SCALING = {
    "efficientnet_v2_b0": ("b", 1.0, 1.0, 224),
    "efficientnet_v2_b1": ("b", 1.0, 1.1, 240),
    "efficientnet_v2_b2": ("b", 1.1, 1.2, 260),
    "efficientnet_v2_b3": ("b", 1.2, 1.4, 300),
    "efficientnet_v2_s": ("s", 1.0, 1.0, 384),
    "efficientnet_v2_m": ("m", 1.0, 1.0, 480),
    "efficientnet_v2_l": ("l", 1.0, 1.0, 480),
}
# Stages: block type, expansion ratio, stride of the first block, input and output channels,
# blocks, squeeze-excite ratio. Every kernel is 3x3. Each row's output, at the variant's default
# size, on the right (B0 at 224, S at 384, M and L at 480).
STAGES = {
    "b": (
        ("fused", 1, 1, 32, 16, 1, 0),  # ........................................ 112x112x16
        ("fused", 4, 2, 16, 32, 2, 0),  # .......................................... 56x56x32
        ("fused", 4, 2, 32, 48, 2, 0),  # .......................................... 28x28x48
        ("mbconv", 4, 2, 48, 96, 3, 0.25),  # ...................................... 14x14x96
        ("mbconv", 6, 1, 96, 112, 5, 0.25),  # .................................... 14x14x112
        ("mbconv", 6, 2, 112, 192, 8, 0.25),  # ..................................... 7x7x192
    ),
    "s": (
        ("fused", 1, 1, 24, 24, 2, 0),  # ........................................ 192x192x24
        ("fused", 4, 2, 24, 48, 4, 0),  # .......................................... 96x96x48
        ("fused", 4, 2, 48, 64, 4, 0),  # .......................................... 48x48x64
        ("mbconv", 4, 2, 64, 128, 6, 0.25),  # .................................... 24x24x128
        ("mbconv", 6, 1, 128, 160, 9, 0.25),  # ................................... 24x24x160
        ("mbconv", 6, 2, 160, 256, 15, 0.25),  # .................................. 12x12x256
    ),
    "m": (
        ("fused", 1, 1, 24, 24, 3, 0),  # ........................................ 240x240x24
        ("fused", 4, 2, 24, 48, 5, 0),  # ........................................ 120x120x48
        ("fused", 4, 2, 48, 80, 5, 0),  # .......................................... 60x60x80
        ("mbconv", 4, 2, 80, 160, 7, 0.25),  # .................................... 30x30x160
        ("mbconv", 6, 1, 160, 176, 14, 0.25),  # .................................. 30x30x176
        ("mbconv", 6, 2, 176, 304, 18, 0.25),  # .................................. 15x15x304
        ("mbconv", 6, 1, 304, 512, 5, 0.25),  # ................................... 15x15x512
    ),
    "l": (
        ("fused", 1, 1, 32, 32, 4, 0),  # ........................................ 240x240x32
        ("fused", 4, 2, 32, 64, 7, 0),  # ........................................ 120x120x64
        ("fused", 4, 2, 64, 96, 7, 0),  # .......................................... 60x60x96
        ("mbconv", 4, 2, 96, 192, 10, 0.25),  # ................................... 30x30x192
        ("mbconv", 6, 1, 192, 224, 19, 0.25),  # .................................. 30x30x224
        ("mbconv", 6, 2, 224, 384, 25, 0.25),  # .................................. 15x15x384
        ("mbconv", 6, 1, 384, 640, 7, 0.25),  # ................................... 15x15x640
    ),
}
KERNEL_SIZE = 3
DROPOUT_RATE = 0.2  # before the classifier, every variant
DROP_CONNECT_RATE = 0.2  # stochastic depth: block b of n skips its branch at rate 0.2 * b / n
BN = dict(axis=3, momentum=0.9)  # the TF reference's BatchNorm momentum
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
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

# Evaluation pipeline: Keras' figures are those of the reference implementation (google/automl,
# efficientnetv2), whose weights Keras converted. B0-B3 were trained and evaluated with its legacy
# EfficientNet (V1) pipeline, as their ImageNet mean/std input shows (preprocess_legacy.py:
# a central size / (size + 32) of the shorter side, bicubic); S, M and L with its own
# (preprocessing.py `preprocess_for_eval`: no crop at 320 px and above, a bilinear resize of the
# whole image to size x size, which keeps no aspect ratio; crop_pct 1.0 bilinear is the nearest).
# Feature levels: the last block of stages 1, 2, 3 and 5 (strides 2, 4, 8, 16; its letter grows
# with the depth), and at stride 32 the last activation (top_activation, also Grad-CAM's default
# layer), as EfficientNet's. The blocks unfrozen first: from the stride-32 stage on (block6a), or
# from the stride-16 ones (block4a).
ENTRY = dict(min_size=32, preprocessing="none", unfreeze_prefixes=("block6a", "block4a"))


@register_model(
    "efficientnet_v2_b0", default_size=224, crop_pct=224 / 256, interpolation="bicubic", **ENTRY,
    feature_layers=dict(P1="block1a_project_activation", P2="block2b_add", P3="block3b_add", P4="block5e_add", P5="top_activation"),
)
def EfficientNetV2B0(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax",
                     include_preprocessing=True, name="efficientnetv2-b0"):
    return EfficientNetV2("efficientnet_v2_b0", locals())


@register_model(
    "efficientnet_v2_b1", default_size=240, crop_pct=240 / 272, interpolation="bicubic", **ENTRY,
    feature_layers=dict(P1="block1b_add", P2="block2c_add", P3="block3c_add", P4="block5f_add", P5="top_activation"),
)
def EfficientNetV2B1(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax",
                     include_preprocessing=True, name="efficientnetv2-b1"):
    return EfficientNetV2("efficientnet_v2_b1", locals())


@register_model(
    "efficientnet_v2_b2", default_size=260, crop_pct=260 / 292, interpolation="bicubic", **ENTRY,
    feature_layers=dict(P1="block1b_add", P2="block2c_add", P3="block3c_add", P4="block5f_add", P5="top_activation"),
)
def EfficientNetV2B2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax",
                     include_preprocessing=True, name="efficientnetv2-b2"):
    return EfficientNetV2("efficientnet_v2_b2", locals())


@register_model(
    "efficientnet_v2_b3", default_size=300, crop_pct=300 / 332, interpolation="bicubic", **ENTRY,
    feature_layers=dict(P1="block1b_add", P2="block2c_add", P3="block3c_add", P4="block5g_add", P5="top_activation"),
)
def EfficientNetV2B3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax",
                     include_preprocessing=True, name="efficientnetv2-b3"):
    return EfficientNetV2("efficientnet_v2_b3", locals())


@register_model(
    "efficientnet_v2_s", default_size=384, crop_pct=1.0, interpolation="bilinear", **ENTRY,
    feature_layers=dict(P1="block1b_add", P2="block2d_add", P3="block3d_add", P4="block5i_add", P5="top_activation"),
)
def EfficientNetV2S(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    include_preprocessing=True, name="efficientnetv2-s"):
    return EfficientNetV2("efficientnet_v2_s", locals())


@register_model(
    "efficientnet_v2_m", default_size=480, crop_pct=1.0, interpolation="bilinear", **ENTRY,
    feature_layers=dict(P1="block1c_add", P2="block2e_add", P3="block3e_add", P4="block5n_add", P5="top_activation"),
)
def EfficientNetV2M(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    include_preprocessing=True, name="efficientnetv2-m"):
    return EfficientNetV2("efficientnet_v2_m", locals())


@register_model(
    "efficientnet_v2_l", default_size=480, crop_pct=1.0, interpolation="bilinear", **ENTRY,
    feature_layers=dict(P1="block1d_add", P2="block2g_add", P3="block3g_add", P4="block5s_add", P5="top_activation"),
)
def EfficientNetV2L(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    include_preprocessing=True, name="efficientnetv2-l"):
    return EfficientNetV2("efficientnet_v2_l", locals())


DOC = """Builds EfficientNetV2-{variant} ({parameters} parameters; {size}x{size} RGB, 0-255).

    Args:
      include_top: whether to end with the 1000-class ImageNet classifier.
      weights: None (random initialisation), "imagenet" (published weights, downloaded once to
        the Keras cache) or the path of a weights file.
      input_tensor: optional Keras tensor to use as the model's input.
      input_shape: (height, width, channels), each side at least 32; default ({size}, {size}, 3)
        with the top, any size without it. With ImageNet weights and the top it must be
        ({size}, {size}, 3).
      pooling: with `include_top=False`: None (the {cells}x{cells}x{channels} feature map at
        {size}x{size}), "avg" or "max" (a {channels}-vector).
      classes: number of classes of the top classifier (1000 with ImageNet weights).
      classifier_activation: activation of the top layer; None returns logits.
      include_preprocessing: whether the model scales its 0-255 input itself ({scaling});
        without it the model takes what that scaling gives.
      name: the model's name.
    """
IMAGENET_SCALING = "to ImageNet's mean and std, or to [-1, 1] for other than 3 channels"


def _doc(variant, parameters, size, channels, scaling="to [-1, 1]"):
    cells = math.ceil(size / 32)
    return DOC.format(
        variant=variant, parameters=parameters, size=size, cells=cells, channels=channels,
        scaling=scaling,
    )


EfficientNetV2B0.__doc__ = _doc("B0", "7.2M", 224, 1280, IMAGENET_SCALING)
EfficientNetV2B1.__doc__ = _doc("B1", "8.2M", 240, 1280, IMAGENET_SCALING)
EfficientNetV2B2.__doc__ = _doc("B2", "10.2M", 260, 1408, IMAGENET_SCALING)
EfficientNetV2B3.__doc__ = _doc("B3", "14.5M", 300, 1536, IMAGENET_SCALING)
EfficientNetV2S.__doc__ = _doc("S", "21.6M", 384, 1280)
EfficientNetV2M.__doc__ = _doc("M", "54.4M", 480, 1280)
EfficientNetV2L.__doc__ = _doc("L", "119.0M", 480, 1280)


def EfficientNetV2(model_name, arguments):
    """The input scaling, the stem, the variant's stages, the last 1x1 convolution and the top,
    for the builder `arguments` of EfficientNetV2B0 ... L.

    Shape comments follow EfficientNetV2-B0 at 224x224.
    """
    table, width_coefficient, depth_coefficient, _ = SCALING[model_name]
    build = builder.start(model_name, arguments)

    def filters(channels):  # widened, rounded to the nearest multiple of 8 (at least 8)
        return max(8, int(channels * width_coefficient + 4) // 8 * 8)

    def repeats(blocks):  # deepened, rounded up
        return math.ceil(depth_coefficient * blocks)

    # Preprocessing in the graph, no weights: 0-255 to what the variant was trained on -- 224x224x3
    x = build.input
    if arguments["include_preprocessing"]:
        if table == "b" and x.shape[-1] == 3:  # EfficientNet's ImageNet normalisation
            x = layers.Rescaling(1.0 / 255.0)(x)
            x = layers.Normalization(
                axis=3, mean=IMAGENET_MEAN_RGB, variance=[s**2 for s in IMAGENET_STDDEV_RGB]
            )(x)
        else:  # [-1, 1]
            x = layers.Rescaling(1.0 / 128.0, offset=-1.0)(x)

    # Stem: 3x3/2 convolution ------------------------------------------ 224x224x3
    stages = STAGES[table]
    x = layers.Conv2D(
        filters(stages[0][3]), KERNEL_SIZE, strides=2, padding="same", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name="stem_conv",
    )(x)
    x = layers.BatchNormalization(name="stem_bn", **BN)(x)
    x = layers.Activation("swish", name="stem_activation")(x)  # 112x112x32

    # Stages 1-6 (7 for M and L): blocks named block1a, block1b, ..., block6h ------ 112x112x32
    total = sum(stage[5] for stage in stages)  # Keras counts the undeepened blocks here
    index = 0  # of the block among all, for its drop rate
    for stage, (kind, expansion, strides, filters_in, filters_out, blocks, se_ratio) in enumerate(
        stages, start=1
    ):
        filters_in, filters_out = filters(filters_in), filters(filters_out)
        for j in range(repeats(blocks)):  # the first block strides and changes the channels
            block_in = filters_in if j == 0 else filters_out
            drop_rate = DROP_CONNECT_RATE * index / total
            name = f"block{stage}{chr(ord('a') + j)}_"
            if kind == "fused":
                x = fused_mbconv_block(
                    x, block_in, filters_out, strides if j == 0 else 1, expansion, drop_rate, name
                )
            else:
                x = mbconv_block(
                    x, block_in, filters_out, strides if j == 0 else 1, expansion, se_ratio,
                    drop_rate, name,
                )
            index += 1
    # 7x7x192

    # Last 1x1 convolution to 1280 channels (widened) ------------------ 7x7x192
    x = layers.Conv2D(
        filters(1280), 1, padding="same", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name="top_conv",
    )(x)
    x = layers.BatchNormalization(name="top_bn", **BN)(x)
    x = layers.Activation("swish", name="top_activation")(x)  # 7x7x1280

    if build.include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(DROPOUT_RATE, name="top_dropout")(x)
        x = layers.Dense(
            build.classes, activation=build.classifier_activation,
            kernel_initializer=DENSE_KERNEL_INITIALIZER, name="predictions",
        )(x)  # 1000 classes
    else:
        x = build.pooled_features(x, named=True)
    return build.finish(x)


def fused_mbconv_block(inputs, filters_in, filters_out, strides, expansion, drop_rate, name):
    """Expand (3x3, swish, strided), project (1x1, linear); with an expansion ratio of 1 a single
    3x3 convolution (swish) instead. No squeeze-excite (no variant gives its fused blocks one).
    """
    x = inputs
    if expansion != 1:
        x = layers.Conv2D(
            filters_in * expansion, KERNEL_SIZE, strides=strides, padding="same", use_bias=False,
            kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}expand_conv",
        )(x)
        x = layers.BatchNormalization(name=f"{name}expand_bn", **BN)(x)
        x = layers.Activation("swish", name=f"{name}expand_activation")(x)

    x = layers.Conv2D(
        filters_out, 1 if expansion != 1 else KERNEL_SIZE, strides=1 if expansion != 1 else strides,
        padding="same", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}project_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}project_bn", **BN)(x)
    if expansion == 1:
        x = layers.Activation("swish", name=f"{name}project_activation")(x)
    return residual(x, inputs, strides, drop_rate, name)


def mbconv_block(inputs, filters_in, filters_out, strides, expansion, se_ratio, drop_rate, name):
    """Expand (1x1, swish), filter (3x3 depthwise, swish), squeeze-excite, project (1x1, linear):
    EfficientNet's block, with 'same' padding at stride 2 as in the TF reference."""
    filters = filters_in * expansion
    x = inputs
    if expansion != 1:
        x = layers.Conv2D(
            filters, 1, padding="same", use_bias=False,
            kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}expand_conv",
        )(x)
        x = layers.BatchNormalization(name=f"{name}expand_bn", **BN)(x)
        x = layers.Activation("swish", name=f"{name}expand_activation")(x)

    x = layers.DepthwiseConv2D(
        KERNEL_SIZE, strides=strides, padding="same", use_bias=False,
        depthwise_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}dwconv2",
    )(x)
    x = layers.BatchNormalization(name=f"{name}bn", **BN)(x)
    x = layers.Activation("swish", name=f"{name}activation")(x)

    if se_ratio:
        x = squeeze_excite(x, max(1, int(filters_in * se_ratio)), name, CONV_KERNEL_INITIALIZER)

    x = layers.Conv2D(
        filters_out, 1, padding="same", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}project_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}project_bn", **BN)(x)
    return residual(x, inputs, strides, drop_rate, name)


def residual(x, inputs, strides, drop_rate, name):
    """When the block keeps its shape it adds its input back, its branch dropped whole at
    `drop_rate` in training (stochastic depth: a Dropout with one value per image)."""
    if strides != 1 or x.shape[-1] != inputs.shape[-1]:
        return x
    if drop_rate > 0:
        x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
    return layers.Add(name=f"{name}add")([x, inputs])


def preprocess_input(x, data_format=None):
    """Returns `x` unchanged: the model scales its own 0-255 input (see `include_preprocessing`)."""
    return x
