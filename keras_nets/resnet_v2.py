"""ResNet50V2, ResNet101V2 and ResNet152V2, layer by layer.

He et al., "Identity Mappings in Deep Residual Networks" (ECCV 2016): the pre-activation
ResNets. Each block normalises and activates its input first (BN -> ReLU, "preact"), runs the
1x1 -> 3x3 -> 1x1 bottleneck and adds the shortcut with no activation after the sum; the network
ends with one BN -> ReLU before the top. As in TF-slim's resnet_v2, from which the published
weights come, a stage's last block strides (stages 2 to 4), not its first, and its shortcut is
then a 1x1 max pool with stride 2. The three differ only in how many blocks stages 3 and 4 have.
Layer names and weighted-layer order are those of `keras.applications.resnet_v2`, so the
published `resnet<depth>v2_weights_tf_dim_ordering_tf_kernels[_notop].h5` files load with a plain
`model.load_weights(path)`. The strided shortcuts' max pools stay unnamed, as in the reference.

Feature levels: a block's sum is its output, activated only inside the next block beside the
shortcut, so each level is the last block sum at its stride (P1 the stem's convolution, P5 the
final post_relu).
"""

from keras import layers

from keras_nets.core import builder, imagenet
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

BN_EPSILON = 1.001e-5

# Residual blocks in each of the four stages.
BLOCKS = {
    "resnet50_v2": (3, 4, 6, 3),
    "resnet101_v2": (3, 4, 23, 3),
    "resnet152_v2": (3, 8, 36, 3),
}

ARGS_DOC = dict(
    input_shape="(height, width, 3), each at least 32; only with `include_top=False` may it\n"
    "        differ from (224, 224, 3).",
    feature_map="the 7x7x2048 feature map at 224x224",
    vector="a 2048-vector",
)


@register_model(
    "resnet50_v2", default_size=224, min_size=32, preprocessing="tf",
    unfreeze_prefixes=("conv5_block1", "conv4_block1"),
    feature_layers=dict(P1="conv1_conv", P2="conv2_block2_out", P3="conv3_block3_out", P4="conv4_block5_out", P5="post_relu"),
)
@builder.with_args_doc(**ARGS_DOC)
def ResNet50V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
               pooling=None, classes=1000, classifier_activation="softmax", name="resnet50v2"):
    """Builds ResNet50V2 (25.6M parameters; inputs scaled to [-1, 1])."""
    return ResNetV2(BLOCKS["resnet50_v2"], "resnet50_v2", **locals())


@register_model(
    "resnet101_v2", default_size=224, min_size=32, preprocessing="tf",
    unfreeze_prefixes=("conv5_block1", "conv4_block1"),
    feature_layers=dict(P1="conv1_conv", P2="conv2_block2_out", P3="conv3_block3_out", P4="conv4_block22_out", P5="post_relu"),
)
@builder.with_args_doc(**ARGS_DOC)
def ResNet101V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="resnet101v2"):
    """Builds ResNet101V2 (44.7M parameters; inputs scaled to [-1, 1])."""
    return ResNetV2(BLOCKS["resnet101_v2"], "resnet101_v2", **locals())


@register_model(
    "resnet152_v2", default_size=224, min_size=32, preprocessing="tf",
    unfreeze_prefixes=("conv5_block1", "conv4_block1"),
    feature_layers=dict(P1="conv1_conv", P2="conv2_block2_out", P3="conv3_block7_out", P4="conv4_block35_out", P5="post_relu"),
)
@builder.with_args_doc(**ARGS_DOC)
def ResNet152V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="resnet152v2"):
    """Builds ResNet152V2 (60.4M parameters; inputs scaled to [-1, 1])."""
    return ResNetV2(BLOCKS["resnet152_v2"], "resnet152_v2", **locals())


def ResNetV2(
    blocks,
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
    """Builds the pre-activation ResNet with `blocks` residual blocks in its four stages.

    Shape comments follow a 224x224 input.

    Args:
      blocks: the number of residual blocks in each of the four stages.
      model_name: the registry name ("resnet50_v2", "resnet101_v2" or "resnet152_v2"): its input
        sizes and published weights apply.
      The others: those of `ResNet50V2`.
    """
    build = builder.start(model_name, locals())

    # Stem: 7x7/2 convolution (no BN: the first block normalises) and 3x3/2 max pool - 224x224x3
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(build.input)
    x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)  # 112x112x64
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)  # 56x56x64

    # Four stages of pre-activation blocks; stages 2 to 4 halve the grid in their last block
    x = stack(x, 64, blocks[0], name="conv2")  # 28x28x256
    x = stack(x, 128, blocks[1], name="conv3")  # 14x14x512
    x = stack(x, 256, blocks[2], name="conv4")  # 7x7x1024
    x = stack(x, 512, blocks[3], stride=1, name="conv5")  # 7x7x2048

    # The last sum, normalised and activated ---------------------------- 7x7x2048
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="post_bn")(x)
    x = layers.Activation("relu", name="post_relu")(x)

    x = build.top(x, named_pooling=True)  # 1000 classes, or the features
    return build.finish(x)


def stack(x, filters, blocks, stride=2, name=None):
    """One stage: a block with a convolution shortcut, `blocks` - 2 with identity shortcuts, and
    a last block striding by `stride`; named <name>_block1, <name>_block2, ..."""
    x = residual_block(x, filters, conv_shortcut=True, name=f"{name}_block1")
    for i in range(2, blocks):
        x = residual_block(x, filters, name=f"{name}_block{i}")
    return residual_block(x, filters, stride=stride, name=f"{name}_block{blocks}")


def residual_block(x, filters, stride=1, conv_shortcut=False, name=None):
    """BN -> ReLU on the input, then the bottleneck 1x1 (`filters`) -> 3x3 (`filters`, strided)
    -> 1x1 (4 x `filters`), added to the shortcut with no activation.

    The shortcut is a 1x1 convolution of the activated input (`conv_shortcut`, the first block of
    a stage), a 1x1 max pool of the raw input with stride `stride` (a stage's striding last
    block), or the raw input itself.
    """
    preact = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_preact_bn")(x)
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(preact)

    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(preact)
    else:
        shortcut = layers.MaxPooling2D(1, strides=stride)(x) if stride > 1 else x

    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)

    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
    x = layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)

    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return layers.Add(name=f"{name}_out")([shortcut, x])


def preprocess_input(x, data_format=None):
    """Scales RGB pixels from 0-255 to [-1, 1]; the caller's array is left unchanged."""
    return imagenet.preprocess_input(x, mode="tf", data_format=data_format)
