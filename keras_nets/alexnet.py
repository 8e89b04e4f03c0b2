"""AlexNet, layer by layer.

Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks" (NIPS 2012), as the article series writes it: five convolutions with max pools, three
dense layers with dropout, 227x227 inputs. Like the articles it leaves out the paper's local
response normalisation and its split of the convolutions over two GPUs, hence 62.4M parameters
instead of the paper's 60M. No Keras ImageNet weights are published for it: `weights` is None or
the path of your own weights file.

Preprocessing is "caffe" (BGR, ImageNet mean subtracted): the recipe of the BVLC Caffe AlexNet,
the reference model that made the 227x227 input size standard.
"""

from keras import layers

from keras_nets.core import builder, imagenet
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model


@register_model(
    "alexnet", default_size=227, min_size=67, preprocessing="caffe", published_weights=False,
    unfreeze_prefixes=("conv5", "conv3"),
    feature_layers=dict(P2="conv1", P3="conv2", P4="conv5", P5="pool5"),
)
@builder.with_args_doc(
    top="the three dense layers and the `classes`-way classifier", imagenet=False,
    input_shape="(height, width, channels); (227, 227, 3) by default and with the top, which\n"
    "        flattens a fixed 6x6x256 map; without it each side needs at least 67 pixels.",
    feature_map="the 6x6x256 feature map at 227x227", vector="a 256-vector",
)
def AlexNet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
            classes=1000, classifier_activation="softmax", name="alexnet"):
    """Builds AlexNet (62.4M parameters; 227x227 inputs, 'caffe' preprocessing); no published
    ImageNet weights exist."""
    build = builder.start("alexnet", locals())

    # Five convolutions ------------------------------------------------ 227x227x3
    x = layers.Conv2D(96, (11, 11), strides=(4, 4), activation="relu", name="conv1")(build.input)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), name="pool1")(x)  # 27x27x96
    x = layers.Conv2D(256, (5, 5), padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), name="pool2")(x)  # 13x13x256
    x = layers.Conv2D(384, (3, 3), padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, (3, 3), padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, (3, 3), padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), name="pool5")(x)  # 6x6x256

    # Three dense layers ----------------------------------------------- 9216
    if build.include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc6")(x)
        x = layers.Dropout(0.5, name="drop6")(x)
        x = layers.Dense(4096, activation="relu", name="fc7")(x)
        x = layers.Dropout(0.5, name="drop7")(x)
        x = layers.Dense(build.classes, activation=build.classifier_activation, name="predictions")(x)
    else:
        x = build.pooled_features(x)

    return build.finish(x)


def preprocess_input(x, data_format=None):
    """Converts RGB to BGR and subtracts the ImageNet mean pixel; the caller's array is left
    unchanged."""
    return imagenet.preprocess_input(x, mode="caffe", data_format=data_format)
