"""ResNet-101 and ResNet-152, layer by layer, with Keras 3's layer names.

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), the bottleneck networks:
four stages of 1x1 -> 3x3 -> 1x1 residual blocks, the first block of each stage with a 1x1
convolution as shortcut (strided from stage 3 on), the others adding their input back unchanged.
The two differ only in how many blocks stages 3 and 4 have. Layer names and weighted-layer order
are those of `keras.applications.resnet` (conv1_conv, conv1_bn, conv2_block1_0_conv, ...,
conv5_block3_out, predictions), so the published
`resnet<depth>_weights_tf_dim_ordering_tf_kernels[_notop].h5` files load with a plain
`model.load_weights(path)`. (`keras_nets.resnet50` keeps the Keras 2 names of its own published
file: res2a_branch2a, ..., fc1000.)
"""

from keras import layers

from keras_nets.core import builder, imagenet
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

BN_EPSILON = 1.001e-5

# Residual blocks in each of the four stages.
BLOCKS = {
    "resnet101": (3, 4, 23, 3),
    "resnet152": (3, 8, 36, 3),
}

ARGS_DOC = dict(
    input_shape="(height, width, 3), each at least 32; only with `include_top=False` may it\n"
    "        differ from (224, 224, 3).",
    feature_map="the 7x7x2048 feature map at 224x224",
    vector="a 2048-vector",
)


@register_model(
    "resnet101", default_size=224, min_size=32, preprocessing="caffe",
    unfreeze_prefixes=("conv5_block1", "conv4_block1"),
    feature_layers=dict(P1="conv1_relu", P2="conv2_block3_out", P3="conv3_block4_out", P4="conv4_block23_out", P5="conv5_block3_out"),
)
@builder.with_args_doc(**ARGS_DOC)
def ResNet101(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax", name="resnet101"):
    """Builds ResNet-101 (44.7M parameters; 224x224 BGR inputs minus the ImageNet mean)."""
    return ResNet(BLOCKS["resnet101"], "resnet101", **locals())


@register_model(
    "resnet152", default_size=224, min_size=32, preprocessing="caffe",
    unfreeze_prefixes=("conv5_block1", "conv4_block1"),
    feature_layers=dict(P1="conv1_relu", P2="conv2_block3_out", P3="conv3_block8_out", P4="conv4_block36_out", P5="conv5_block3_out"),
)
@builder.with_args_doc(**ARGS_DOC)
def ResNet152(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax", name="resnet152"):
    """Builds ResNet-152 (60.4M parameters; 224x224 BGR inputs minus the ImageNet mean)."""
    return ResNet(BLOCKS["resnet152"], "resnet152", **locals())


def ResNet(
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
    """Builds the ResNet with `blocks` residual blocks in its four stages.

    Shape comments follow a 224x224 input.

    Args:
      blocks: the number of residual blocks in each of the four stages.
      model_name: the registry name ("resnet101" or "resnet152"): its input sizes and published
        weights apply.
      The others: those of `ResNet101`.
    """
    build = builder.start(model_name, locals())

    # Stem: 7x7/2 convolution and 3x3/2 max pool ------------------------ 224x224x3
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(build.input)
    x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)  # 112x112x64
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)  # 56x56x64

    # Four stages of bottleneck blocks; stages 3 to 5 halve the grid in their first block
    x = stack(x, 64, blocks[0], stride=1, name="conv2")  # 56x56x256
    x = stack(x, 128, blocks[1], name="conv3")  # 28x28x512
    x = stack(x, 256, blocks[2], name="conv4")  # 14x14x1024
    x = stack(x, 512, blocks[3], name="conv5")  # 7x7x2048

    x = build.top(x, named_pooling=True)  # 1000 classes, or the features
    return build.finish(x)


def stack(x, filters, blocks, stride=2, name=None):
    """One stage: a block with a convolution shortcut (striding by `stride`), then `blocks` - 1
    blocks with identity shortcuts; the blocks are named <name>_block1, <name>_block2, ..."""
    x = residual_block(x, filters, stride=stride, conv_shortcut=True, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = residual_block(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def residual_block(x, filters, stride=1, conv_shortcut=True, name=None):
    """The bottleneck, 1x1 (`filters`) -> 3x3 (`filters`) -> 1x1 (4 x `filters`) convolutions
    each with BN, added to the shortcut, then ReLU.

    The shortcut is a strided 1x1 convolution with BN (`conv_shortcut`, the first block of a
    stage) or the input itself. The first 1x1 convolution strides too. The shortcut comes first,
    as in the reference code: the weights follow that order.
    """
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x

    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)

    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)

    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_3_bn")(x)

    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def preprocess_input(x, data_format=None):
    """RGB to BGR, minus the ImageNet mean pixel (caffe style); the caller's array is unchanged."""
    return imagenet.preprocess_input(x, mode="caffe", data_format=data_format)
