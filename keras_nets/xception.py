"""Xception, layer by layer.

Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions" (CVPR 2017).
Layer names and weighted-layer order are those of `keras.applications.Xception`, so the published
`xception_weights_tf_dim_ordering_tf_kernels.h5` files load with a plain `model.load_weights(path)`.
The 1x1 shortcut convolutions stay unnamed, as in the reference code.
"""

from keras import layers

from keras_nets.core import builder, imagenet
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model


@register_model(
    "xception", default_size=299, min_size=71, preprocessing="tf",
    unfreeze_prefixes=("block13", "block14"),
    feature_layers=dict(P1="block1_conv2_act", P2="block3_sepconv1_act", P3="block4_sepconv1_act", P4="block13_sepconv1_act", P5="block14_sepconv2_act"),
)
@builder.with_args_doc(
    input_shape="(height, width, 3), each at least 71; only with `include_top=False` may it\n"
    "        differ from (299, 299, 3).",
    feature_map="the 10x10x2048 feature map at 299x299", vector="a 2048-vector",
)
def Xception(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name="xception"):
    """Builds Xception (22.9M parameters; 299x299 inputs scaled to [-1, 1])."""
    build = builder.start("xception", locals())

    # Entry flow ------------------------------------------------------ 299x299x3
    x = layers.Conv2D(32, (3, 3), strides=(2, 2), use_bias=False, name="block1_conv1")(build.input)
    x = layers.BatchNormalization(name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, (3, 3), use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)  # 147x147x64

    x = entry_block(x, 128, block=2, activate_input=False)  # 74x74x128
    x = entry_block(x, 256, block=3)  # 37x37x256
    x = entry_block(x, 728, block=4)  # 19x19x728

    # Middle flow: eight identical residual blocks --------------------- 19x19x728
    for block in range(5, 13):
        x = middle_block(x, block)

    # Exit flow ------------------------------------------------------- 19x19x728
    residual = layers.Conv2D(1024, (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
    residual = layers.BatchNormalization()(residual)

    x = layers.Activation("relu", name="block13_sepconv1_act")(x)
    x = layers.SeparableConv2D(728, (3, 3), padding="same", use_bias=False, name="block13_sepconv1")(x)
    x = layers.BatchNormalization(name="block13_sepconv1_bn")(x)
    x = layers.Activation("relu", name="block13_sepconv2_act")(x)
    x = layers.SeparableConv2D(1024, (3, 3), padding="same", use_bias=False, name="block13_sepconv2")(x)
    x = layers.BatchNormalization(name="block13_sepconv2_bn")(x)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name="block13_pool")(x)
    x = layers.add([x, residual])  # 10x10x1024

    x = layers.SeparableConv2D(1536, (3, 3), padding="same", use_bias=False, name="block14_sepconv1")(x)
    x = layers.BatchNormalization(name="block14_sepconv1_bn")(x)
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = layers.SeparableConv2D(2048, (3, 3), padding="same", use_bias=False, name="block14_sepconv2")(x)
    x = layers.BatchNormalization(name="block14_sepconv2_bn")(x)
    x = layers.Activation("relu", name="block14_sepconv2_act")(x)  # 10x10x2048

    x = build.top(x)  # 1000 classes, or the features
    return build.finish(x)


def entry_block(x, filters, block, activate_input=True):
    """Two separable convolutions and a stride-2 max pool, added to a strided 1x1 shortcut.

    The shortcut is built first: that is the reference's layer order, which the weights follow.
    """
    residual = layers.Conv2D(filters, (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
    residual = layers.BatchNormalization()(residual)

    prefix = f"block{block}"
    if activate_input:  # block 2 follows a ReLU already
        x = layers.Activation("relu", name=f"{prefix}_sepconv1_act")(x)
    x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=f"{prefix}_sepconv1")(x)
    x = layers.BatchNormalization(name=f"{prefix}_sepconv1_bn")(x)
    x = layers.Activation("relu", name=f"{prefix}_sepconv2_act")(x)
    x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=f"{prefix}_sepconv2")(x)
    x = layers.BatchNormalization(name=f"{prefix}_sepconv2_bn")(x)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"{prefix}_pool")(x)
    return layers.add([x, residual])


def middle_block(x, block):
    """Three ReLU-separable-conv-BN steps at 728 channels with an identity shortcut."""
    residual = x
    prefix = f"block{block}"
    for step in (1, 2, 3):
        x = layers.Activation("relu", name=f"{prefix}_sepconv{step}_act")(x)
        x = layers.SeparableConv2D(728, (3, 3), padding="same", use_bias=False, name=f"{prefix}_sepconv{step}")(x)
        x = layers.BatchNormalization(name=f"{prefix}_sepconv{step}_bn")(x)
    return layers.add([x, residual])


def preprocess_input(x, data_format=None):
    """Scales RGB pixels from 0-255 to [-1, 1]; the caller's array is left unchanged."""
    return imagenet.preprocess_input(x, mode="tf", data_format=data_format)
