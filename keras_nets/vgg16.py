"""VGG16, layer by layer.

Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition"
(ICLR 2015), configuration D. Layer names and weighted-layer order are those of
`keras.applications.VGG16`, so the published `vgg16_weights_tf_dim_ordering_tf_kernels.h5` files
load with a plain `model.load_weights(path)`.
"""

from keras import layers

from keras_nets import builder, imagenet
from keras_nets.imagenet import decode_predictions  # noqa: F401 - part of the module's API


def VGG16(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg16",
):
    """Builds VGG16 (138.4M parameters; 224x224 inputs, BGR with the ImageNet mean subtracted).

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
    img_input = builder.image_input(
        "vgg16",
        weights=weights,
        include_top=include_top,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )

    # Five blocks of 3x3 convolutions, each ending in a 2x2 max pool --- 224x224x3
    x = conv_block(img_input, 64, convs=2, block=1)  # 112x112x64
    x = conv_block(x, 128, convs=2, block=2)  # 56x56x128
    x = conv_block(x, 256, convs=3, block=3)  # 28x28x256
    x = conv_block(x, 512, convs=3, block=4)  # 14x14x512
    x = conv_block(x, 512, convs=3, block=5)  # 7x7x512

    x = fully_connected_top(
        x,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )  # 1000 classes, or the features
    return builder.finish_model(
        img_input,
        x,
        input_tensor=input_tensor,
        name=name,
        weights=weights,
        include_top=include_top,
        model_name="vgg16",
    )


def conv_block(x, filters, convs, block):
    """`convs` same-padded 3x3 ReLU convolutions, then a 2x2 max pool halving the size."""
    for conv in range(1, convs + 1):
        x = layers.Conv2D(
            filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{conv}"
        )(x)
    return layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)


def fully_connected_top(x, *, include_top, pooling, classes, classifier_activation):
    """VGG's top: Flatten, two 4096-unit ReLU layers and the classifier; else `pooling_head`."""
    if not include_top:
        return builder.pooling_head(x, pooling)
    x = layers.Flatten(name="flatten")(x)  # 25088 at 224x224
    x = layers.Dense(4096, activation="relu", name="fc1")(x)
    x = layers.Dense(4096, activation="relu", name="fc2")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def preprocess_input(x, data_format=None):
    """Converts RGB pixels (0-255) to BGR minus the ImageNet mean; `x` itself is unchanged."""
    return imagenet.preprocess_input(x, mode="caffe", data_format=data_format)
