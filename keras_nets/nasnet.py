"""NASNetMobile and NASNetLarge (NASNet-A), layer by layer.

Zoph, Vasudevan, Shlens and Le, "Learning Transferable Architectures for Scalable Image
Recognition" (CVPR 2018). A controller network searched for two cells on CIFAR-10, a Normal cell
(keeps the grid) and a Reduction cell (halves it), each combining its two inputs, the outputs of
the two cells before it, through five pairs of separable convolutions and poolings (figure 4 of
the paper). ImageNet's NASNet-A stacks them: a 3x3/2 stem convolution, two Reduction cells, then
three stages of N Normal cells with a Reduction cell between them. The two published networks,
"NASNet-A (N @ P)" with P filters in the penultimate layer, differ in N, width and stem, and in
what the cell after a Reduction cell takes as its second input (CELLS).

Layer names and weighted-layer order are those of `keras.applications.nasnet` (cells numbered
0 ... 3N+1 across the network, as "normal_conv_1_5", "reduction_concat_reduce_4"), so the
published `nasnet_mobile[_no_top].h5` and `nasnet_large[_no_top].h5` load with a plain
`model.load_weights(path)`. The layers Keras leaves unnamed (the ReLUs before each convolution,
the pads, crops and concatenation of a shifted shortcut) stay unnamed, but for the last ReLU,
named `final_relu` here for the feature level it is (Keras' is unnamed and has no weights).

The network needs a fixed input size even without its top: a cell pads a strided convolution
and compares its two inputs' grids by their static shapes. keras.applications builds for the
default size when `input_shape` is None, and so does this module; it also refuses a None height
or width (`builder.start(..., static=True)`), which keras.applications accepts without weights
but then builds another network: None equals None, so no shortcut is halved (NASNetMobile: 382
weighted layers instead of 388), and it fails on a real image.

Feature levels: the stem after its ReLU (stride 2: Keras gives each branch that takes the stem
its own ReLU, and names one, adjust_relu_1_stem_2, the second stem cell's shortcut), the first
Reduction cell's output (stride 4), the last Normal cell of the stride-8 and stride-16 stages, and
the final ReLU (stride 32). Levels 2 to 4 are cell outputs before any ReLU: each cell that takes
one activates it in a layer of its own. Each cell takes the two cells before it, so no cell
output is the only path onward (tests/core/test_features.py says how it checks them).
"""

from keras import layers

from keras_nets.core import builder, imagenet
from keras_nets.core.blocks import stride2_padding
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

BN = dict(momentum=0.9997, epsilon=1e-3)  # TF-slim's NASNet BatchNorm

# N (Normal cells per stage), P (penultimate filters), stem filters, and whether the cell after a
# Reduction cell takes the cell before that Reduction as its second input (skip_reduction, as
# Keras calls it; NASNetLarge) or the Reduction cell's own input (NASNetMobile). The width
# multiplier between stages is 2 for both: a stage has filters P / 24, x2, x4.
CELLS = {
    "nasnet_mobile": (4, 1056, 32, False),
    "nasnet_large": (6, 4032, 96, True),
}
FILTER_MULTIPLIER = 2

ARGS_DOC = dict(
    input_shape="(height, width, 3), each at least 32, fixed (NASNet takes no None size);\n"
    "        default: its default size; only with `include_top=False` may it differ from it.",
    feature_map="the final ReLU's feature map: 7x7x1056 for NASNetMobile at 224x224, "
    "11x11x4032 for NASNetLarge at 331x331",
    vector="a 1056- or 4032-vector",
)


@register_model(
    "nasnet_mobile", default_size=224, min_size=32, preprocessing="tf",
    unfreeze_prefixes=("reduction_conv_1_reduce_8", "reduction_conv_1_reduce_4"),
    feature_layers=dict(P1="adjust_relu_1_stem_2", P2="reduction_concat_stem_1", P3="normal_concat_3", P4="normal_concat_8", P5="final_relu"),
)
@builder.with_args_doc(**ARGS_DOC)
def NASNetMobile(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                 pooling=None, classes=1000, classifier_activation="softmax",
                 name="nasnet_mobile"):
    """Builds NASNet-A (4 @ 1056), NASNetMobile (5.3M parameters; 224x224, inputs scaled to
    [-1, 1])."""
    return NASNet("nasnet_mobile", **locals())


@register_model(
    "nasnet_large", default_size=331, min_size=32, preprocessing="tf",
    crop_pct=0.911, interpolation="bicubic",  # timm's nasnetalarge.tf_in1k, the same TF-slim weights
    unfreeze_prefixes=("reduction_conv_1_reduce_12", "reduction_conv_1_reduce_6"),
    feature_layers=dict(P1="adjust_relu_1_stem_2", P2="reduction_concat_stem_1", P3="normal_concat_5", P4="normal_concat_12", P5="final_relu"),
)
@builder.with_args_doc(**ARGS_DOC)
def NASNetLarge(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="nasnet_large"):
    """Builds NASNet-A (6 @ 4032), NASNetLarge (88.9M parameters; 331x331, inputs scaled to
    [-1, 1])."""
    return NASNet("nasnet_large", **locals())


def NASNet(
    model_name,
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
):
    """The stem, two Reduction cells, three stages of Normal cells with Reduction cells between
    them, the final ReLU and the top.

    Shape comments follow NASNetMobile at 224x224 (NASNetLarge at 331x331: 165, 83, 42, 21, 11
    cells a side; 4032 channels at the end).
    """
    blocks, penultimate_filters, stem_filters, skip_reduction = CELLS[model_name]
    build = builder.start(model_name, locals(), static=True)
    filters = penultimate_filters // 24  # the first stage's; x2 and x4 in the next two

    # Stem: 3x3/2 convolution, no padding ------------------------------------- 224x224x3
    x = layers.Conv2D(
        stem_filters, 3, strides=2, padding="valid", use_bias=False,
        kernel_initializer="he_normal", name="stem_conv1",
    )(build.input)
    x = layers.BatchNormalization(**BN, name="stem_bn1")(x)  # 111x111x32

    # Two Reduction cells, the first taking the stem twice -------------------- 111x111x32
    x, p = reduction_cell(x, None, filters // FILTER_MULTIPLIER**2, "stem_1")  # 56x56x44
    x, p = reduction_cell(x, p, filters // FILTER_MULTIPLIER, "stem_2")  # 28x28x88

    # Stage of N Normal cells, numbered 0 ... N-1 --------------------------------- 28x28
    for i in range(blocks):
        x, p = normal_cell(x, p, filters, f"{i}")  # 28x28x264

    # Reduction, then N Normal cells, numbered N+1 ... 2N --------------------------- 14x14
    x, before = reduction_cell(x, p, filters * FILTER_MULTIPLIER, f"reduce_{blocks}")
    p = p if skip_reduction else before
    for i in range(blocks):
        x, p = normal_cell(x, p, filters * FILTER_MULTIPLIER, f"{blocks + i + 1}")  # 14x14x528

    # Reduction, then N Normal cells, numbered 2N+1 ... 3N ----------------------------- 7x7
    x, before = reduction_cell(x, p, filters * FILTER_MULTIPLIER**2, f"reduce_{2 * blocks}")
    p = p if skip_reduction else before
    for i in range(blocks):
        x, p = normal_cell(x, p, filters * FILTER_MULTIPLIER**2, f"{2 * blocks + i + 1}")

    x = layers.Activation("relu", name="final_relu")(x)  # 7x7x1056
    x = build.top(x)  # 1000 classes, or the features
    return build.finish(x)


def normal_cell(x, p, filters, block_id):
    """NASNet-A's Normal cell (figure 4, left): from the previous cell's output `x` (through a
    1x1 convolution, `h`) and the one before, `p` (made to fit, `adjust`), five sums of two
    operations each, concatenated with `p`. Returns (its output, `x` as the next cell's `p`).
    Output: 6 x `filters` channels on `x`'s grid."""
    p = adjust(p, x, filters, block_id)
    h = layers.Activation("relu")(x)
    h = layers.Conv2D(
        filters, 1, padding="same", use_bias=False, kernel_initializer="he_normal",
        name=f"normal_conv_1_{block_id}",
    )(h)
    h = layers.BatchNormalization(**BN, name=f"normal_bn_1_{block_id}")(h)

    left = separable_block(h, filters, 5, f"normal_left1_{block_id}")
    right = separable_block(p, filters, 3, f"normal_right1_{block_id}")
    x1 = layers.add([left, right], name=f"normal_add_1_{block_id}")

    left = separable_block(p, filters, 5, f"normal_left2_{block_id}")
    right = separable_block(p, filters, 3, f"normal_right2_{block_id}")
    x2 = layers.add([left, right], name=f"normal_add_2_{block_id}")

    left = layers.AveragePooling2D(3, strides=1, padding="same", name=f"normal_left3_{block_id}")(h)
    x3 = layers.add([left, p], name=f"normal_add_3_{block_id}")

    left = layers.AveragePooling2D(3, strides=1, padding="same", name=f"normal_left4_{block_id}")(p)
    right = layers.AveragePooling2D(3, strides=1, padding="same", name=f"normal_right4_{block_id}")(p)
    x4 = layers.add([left, right], name=f"normal_add_4_{block_id}")

    left = separable_block(h, filters, 3, f"normal_left5_{block_id}")
    x5 = layers.add([left, h], name=f"normal_add_5_{block_id}")

    out = layers.concatenate([p, x1, x2, x3, x4, x5], name=f"normal_concat_{block_id}")
    return out, x


def reduction_cell(x, p, filters, block_id):
    """NASNet-A's Reduction cell (figure 4, right): strided separable convolutions and poolings
    of `h` (the previous cell's output through a 1x1 convolution) and `p` (the one before, made
    to fit), summed in pairs, four sums concatenated. Returns (its output, `x` as the next cell's
    `p`). Output: 4 x `filters` channels on half `x`'s grid (rounded up)."""
    p = adjust(p, x, filters, block_id)
    h = layers.Activation("relu")(x)
    h = layers.Conv2D(
        filters, 1, padding="same", use_bias=False, kernel_initializer="he_normal",
        name=f"reduction_conv_1_{block_id}",
    )(h)
    h = layers.BatchNormalization(**BN, name=f"reduction_bn_1_{block_id}")(h)
    h3 = layers.ZeroPadding2D(stride2_padding(h, 3), name=f"reduction_pad_1_{block_id}")(h)

    left = separable_block(h, filters, 5, f"reduction_left1_{block_id}", strides=2)
    right = separable_block(p, filters, 7, f"reduction_right1_{block_id}", strides=2)
    x1 = layers.add([left, right], name=f"reduction_add_1_{block_id}")

    left = layers.MaxPooling2D(3, strides=2, name=f"reduction_left2_{block_id}")(h3)
    right = separable_block(p, filters, 7, f"reduction_right2_{block_id}", strides=2)
    x2 = layers.add([left, right], name=f"reduction_add_2_{block_id}")

    left = layers.AveragePooling2D(3, strides=2, name=f"reduction_left3_{block_id}")(h3)
    right = separable_block(p, filters, 5, f"reduction_right3_{block_id}", strides=2)
    x3 = layers.add([left, right], name=f"reduction_add3_{block_id}")

    left = layers.AveragePooling2D(3, strides=1, padding="same", name=f"reduction_left4_{block_id}")(x1)
    x4 = layers.add([x2, left])  # unnamed in Keras

    # Keras names this separable block "left4" too (its layers differ from the pool's by suffix)
    left = separable_block(x1, filters, 3, f"reduction_left4_{block_id}")
    right = layers.MaxPooling2D(3, strides=2, name=f"reduction_right5_{block_id}")(h3)
    x5 = layers.add([left, right], name=f"reduction_add4_{block_id}")

    out = layers.concatenate([x2, x3, x4, x5], name=f"reduction_concat_{block_id}")
    return out, x


def separable_block(x, filters, kernel_size, block_id, strides=1):
    """ReLU -> separable convolution (strided if `strides` is 2, after TF's "same" padding)
    -> BN, twice; the second keeps the grid."""
    x = layers.Activation("relu")(x)
    if strides == 2:
        x = layers.ZeroPadding2D(
            stride2_padding(x, kernel_size), name=f"separable_conv_1_pad_{block_id}"
        )(x)
    x = layers.SeparableConv2D(
        filters, kernel_size, strides=strides, padding="valid" if strides == 2 else "same",
        use_bias=False, name=f"separable_conv_1_{block_id}",
    )(x)
    x = layers.BatchNormalization(**BN, name=f"separable_conv_1_bn_{block_id}")(x)
    x = layers.Activation("relu")(x)
    x = layers.SeparableConv2D(
        filters, kernel_size, padding="same", use_bias=False, name=f"separable_conv_2_{block_id}"
    )(x)
    return layers.BatchNormalization(**BN, name=f"separable_conv_2_bn_{block_id}")(x)


def adjust(p, x, filters, block_id):
    """The previous-but-one cell's output `p` made to fit the cell's input `x`: `x` itself when
    there is none (the first cell); on a grid twice as large, halved by two 1x1/2 average pools,
    one shifted by a pixel, each to `filters` / 2 channels, concatenated; with other channels, a
    1x1 convolution to `filters`."""
    if p is None:
        return x
    if p.shape[2] != x.shape[2]:
        p = layers.Activation("relu", name=f"adjust_relu_1_{block_id}")(p)
        p1 = layers.AveragePooling2D(1, strides=2, name=f"adjust_avg_pool_1_{block_id}")(p)
        p1 = layers.Conv2D(
            filters // 2, 1, padding="same", use_bias=False, kernel_initializer="he_normal",
            name=f"adjust_conv_1_{block_id}",
        )(p1)
        p2 = layers.ZeroPadding2D(((0, 1), (0, 1)))(p)  # the shift: one pixel down and right
        p2 = layers.Cropping2D(((1, 0), (1, 0)))(p2)
        p2 = layers.AveragePooling2D(1, strides=2, name=f"adjust_avg_pool_2_{block_id}")(p2)
        p2 = layers.Conv2D(
            filters // 2, 1, padding="same", use_bias=False, kernel_initializer="he_normal",
            name=f"adjust_conv_2_{block_id}",
        )(p2)
        p = layers.concatenate([p1, p2])
        return layers.BatchNormalization(**BN, name=f"adjust_bn_{block_id}")(p)
    if p.shape[-1] != filters:
        p = layers.Activation("relu")(p)
        p = layers.Conv2D(
            filters, 1, padding="same", use_bias=False, kernel_initializer="he_normal",
            name=f"adjust_conv_projection_{block_id}",
        )(p)
        return layers.BatchNormalization(**BN, name=f"adjust_bn_{block_id}")(p)
    return p


def preprocess_input(x, data_format=None):
    """Scales RGB pixels from 0-255 to [-1, 1]; the caller's array is left unchanged."""
    return imagenet.preprocess_input(x, mode="tf", data_format=data_format)
