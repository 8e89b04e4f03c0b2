"""DenseNet-121, -169 and -201, layer by layer.

Huang, Liu, van der Maaten and Weinberger, "Densely Connected Convolutional Networks" (CVPR 2017),
the DenseNet-BC networks: growth rate 32, 1x1 bottlenecks of 4 x 32 channels, transitions that
halve the channels. The three differ only in how many layers each of the four dense blocks has.
Layer names and weighted-layer order are those of `keras.applications.densenet`, so the published
`densenet<depth>_weights_tf_dim_ordering_tf_kernels.h5` files load with a plain
`model.load_weights(path)`. The two zero paddings stay unnamed, as in the reference code.
"""

from keras import layers

from keras_nets.core import builder, imagenet
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

GROWTH_RATE = 32
BN_EPSILON = 1.001e-5


DOC = """Builds DenseNet-{depth} ({parameters} parameters; 224x224 inputs, ImageNet mean/std
    normalised): dense blocks of {blocks} layers, a {channels}-channel final feature map.

    Args:
      include_top: whether to end with the 1000-class ImageNet classifier.
      weights: None (random initialisation), "imagenet" (published weights, downloaded once to
        the Keras cache) or the path of a weights file.
      input_tensor: optional Keras tensor to use as the model's input.
      input_shape: (height, width, 3), each at least 32; only with `include_top=False` may it
        differ from (224, 224, 3).
      pooling: with `include_top=False`: None (the 7x7 final feature map at 224x224), "avg" or
        "max" (a {channels}-vector).
      classes: number of classes of the top classifier (1000 with ImageNet weights).
      classifier_activation: activation of the top layer; None returns logits.
      name: the model's name.
    """

# Layers in each of the four dense blocks.
BLOCKS = {
    "densenet121": (6, 12, 24, 16),
    "densenet169": (6, 12, 32, 32),
    "densenet201": (6, 12, 48, 32),
}
# The three share their registry entry: the feature levels and the blocks unfrozen first.
REGISTRY_ENTRY = dict(
    default_size=224, min_size=32, preprocessing="torch",
    unfreeze_prefixes=("conv5_block1", "pool4"),
    feature_layers=dict(P1="conv1_relu", P2="pool2_relu", P3="pool3_relu", P4="pool4_relu", P5="relu"),
)


@register_model("densenet121", **REGISTRY_ENTRY)
def DenseNet121(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="densenet121"):
    return DenseNet(BLOCKS["densenet121"], "densenet121", **locals())


@register_model("densenet169", **REGISTRY_ENTRY)
def DenseNet169(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="densenet169"):
    return DenseNet(BLOCKS["densenet169"], "densenet169", **locals())


@register_model("densenet201", **REGISTRY_ENTRY)
def DenseNet201(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="densenet201"):
    return DenseNet(BLOCKS["densenet201"], "densenet201", **locals())


DenseNet121.__doc__ = DOC.format(
    depth=121, parameters="8.1M", blocks="6, 12, 24 and 16", channels=1024
)
DenseNet169.__doc__ = DOC.format(
    depth=169, parameters="14.3M", blocks="6, 12, 32 and 32", channels=1664
)
DenseNet201.__doc__ = DOC.format(
    depth=201, parameters="20.2M", blocks="6, 12, 48 and 32", channels=1920
)


def DenseNet(
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
    """Builds the DenseNet with `blocks` layers in its four dense blocks.

    Shape comments follow DenseNet-121 at 224x224.

    Args:
      blocks: the number of convolution blocks in each of the four dense blocks.
      model_name: the registry name ("densenet121", "densenet169" or "densenet201"): its input
        sizes and published weights apply.
      The others: those of `DenseNet121`.
    """
    build = builder.start(model_name, locals())

    # Stem: 7x7 stride-2 convolution and 3x3 stride-2 max pool --------- 224x224x3
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)))(build.input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)  # 112x112x64
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)  # 56x56x64

    # Four dense blocks, joined by transitions that halve channels and size
    x = dense_block(x, blocks[0], name="conv2")  # 56x56x256
    x = transition_block(x, 0.5, name="pool2")  # 28x28x128
    x = dense_block(x, blocks[1], name="conv3")  # 28x28x512
    x = transition_block(x, 0.5, name="pool3")  # 14x14x256
    x = dense_block(x, blocks[2], name="conv4")  # 14x14x1024
    x = transition_block(x, 0.5, name="pool4")  # 7x7x512
    x = dense_block(x, blocks[3], name="conv5")  # 7x7x1024

    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)

    x = build.top(x, named_pooling=True)  # 1000 classes, or the features
    return build.finish(x)


def dense_block(x, blocks, name):
    """`blocks` convolution blocks, each adding GROWTH_RATE channels to everything before it."""
    for i in range(1, blocks + 1):
        x = conv_block(x, name=f"{name}_block{i}")
    return x


def conv_block(x, name):
    """BN-ReLU-1x1 conv (bottleneck) and BN-ReLU-3x3 conv, concatenated onto the input."""
    x1 = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_0_bn")(x)
    x1 = layers.Activation("relu", name=f"{name}_0_relu")(x1)
    x1 = layers.Conv2D(4 * GROWTH_RATE, 1, use_bias=False, name=f"{name}_1_conv")(x1)
    x1 = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_1_bn")(x1)
    x1 = layers.Activation("relu", name=f"{name}_1_relu")(x1)
    x1 = layers.Conv2D(GROWTH_RATE, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x1)
    return layers.Concatenate(name=f"{name}_concat")([x, x1])


def transition_block(x, reduction, name):
    """BN-ReLU-1x1 conv keeping `reduction` of the channels, then a 2x2 average pool."""
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.Conv2D(int(x.shape[-1] * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def preprocess_input(x, data_format=None):
    """Scales RGB pixels (0-255) to [0, 1] and normalises each channel with the ImageNet mean and
    standard deviation; the caller's array is left unchanged."""
    return imagenet.preprocess_input(x, mode="torch", data_format=data_format)
