"""VGG16 and VGG19, layer by layer.

Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition"
(ICLR 2015), configurations D (16 layers) and E (19 layers: a fourth convolution in blocks 3, 4
and 5). Layer names and weighted-layer order are those of `keras.applications.VGG16` / `VGG19`,
so the published `vgg<16|19>_weights_tf_dim_ordering_tf_kernels.h5` files load with a plain
`model.load_weights(path)`. `keras_nets.vgg16` and `keras_nets.vgg19` re-export them.
"""

from keras import layers

from keras_nets.core import builder, imagenet
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model

# Convolutions in each of the five blocks.
CONVS_PER_BLOCK = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}

DOC = """Builds {builder} ({parameters} parameters; 224x224 inputs, BGR with the ImageNet mean
    subtracted).

    Args:
      include_top: whether to end with the three fully connected layers (fc1, fc2 and the
        1000-class ImageNet classifier).
      weights: None (random initialisation), "imagenet" (published weights, downloaded once to
        the Keras cache) or the path of a weights file.
      input_tensor: optional Keras tensor to use as the model's input.
      input_shape: (height, width, 3), each at least 32; with `include_top=True` the fully
        connected top fixes it, to (224, 224, 3) for the ImageNet weights.
      pooling: with `include_top=False`: None (the 7x7x512 feature map at 224x224), "avg" or
        "max" (a 512-vector).
      classes: number of classes of the top classifier (1000 with ImageNet weights).
      classifier_activation: activation of the top layer; None returns logits.
      name: the model's name.
    """


@register_model(
    "vgg16", default_size=224, min_size=32, preprocessing="caffe",
    unfreeze_prefixes=("block5", "block4"),
    feature_layers=dict(P1="block2_conv2", P2="block3_conv3", P3="block4_conv3", P4="block5_conv3", P5="block5_pool"),
)
def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg16"):
    return VGG("vgg16", locals())


@register_model(
    "vgg19", default_size=224, min_size=32, preprocessing="caffe",
    unfreeze_prefixes=("block5", "block4"),
    feature_layers=dict(P1="block2_conv2", P2="block3_conv4", P3="block4_conv4", P4="block5_conv4", P5="block5_pool"),
)
def VGG19(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg19"):
    return VGG("vgg19", locals())


VGG16.__doc__ = DOC.format(builder="VGG16", parameters="138.4M")
VGG19.__doc__ = DOC.format(builder="VGG19", parameters="143.7M")


def VGG(model_name, arguments):
    """The VGG network `model_name` ("vgg16" or "vgg19") for a builder's `arguments`."""
    build = builder.start(model_name, arguments)
    convs = CONVS_PER_BLOCK[model_name]

    # Five blocks of 3x3 convolutions, each ending in a 2x2 max pool --- 224x224x3
    x = conv_block(build.input, 64, convs[0], block=1)  # 112x112x64
    x = conv_block(x, 128, convs[1], block=2)  # 56x56x128
    x = conv_block(x, 256, convs[2], block=3)  # 28x28x256
    x = conv_block(x, 512, convs[3], block=4)  # 14x14x512
    x = conv_block(x, 512, convs[4], block=5)  # 7x7x512

    if build.include_top:
        x = fully_connected_top(x, build.classes, build.classifier_activation)  # 1000 classes
    else:
        x = build.pooled_features(x)
    return build.finish(x)


def conv_block(x, filters, convs, block):
    """`convs` same-padded 3x3 ReLU convolutions, then a 2x2 max pool halving the size."""
    for conv in range(1, convs + 1):
        x = layers.Conv2D(
            filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{conv}"
        )(x)
    return layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)


def fully_connected_top(x, classes, classifier_activation):
    """VGG's top: Flatten, two 4096-unit ReLU layers and the classifier."""
    x = layers.Flatten(name="flatten")(x)  # 25088 at 224x224
    x = layers.Dense(4096, activation="relu", name="fc1")(x)
    x = layers.Dense(4096, activation="relu", name="fc2")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def preprocess_input(x, data_format=None):
    """Converts RGB pixels (0-255) to BGR minus the ImageNet mean; `x` itself is unchanged."""
    return imagenet.preprocess_input(x, mode="caffe", data_format=data_format)
