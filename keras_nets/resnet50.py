"""ResNet50, layer by layer, with the Keras 2 layer names.

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016).
Written as the Keras 2 era code (keras-applications 1.0.8's `resnet50` module, Keras 2.2's
`keras.applications.ResNet50`) and the articles that follow it write it: `identity_block` and
`conv_block`, layers named after the Caffe model (conv1, bn_conv1, res2a_branch2a, bn2a_branch2a,
..., fc1000). That is the layout of the published `resnet50_weights_tf_dim_ordering_tf_kernels.h5`
files (release v0.2), which load with a plain `model.load_weights(path)`. Keras 3's own ResNet50
uses other names and another layer order. The ReLU and max-pooling layers stay unnamed, as in the
reference code.
"""

from keras import layers

from keras_nets.core import builder, imagenet
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model


@register_model(
    "resnet50", default_size=224, min_size=32, preprocessing="caffe",
    unfreeze_prefixes=("res5a", "res4a"),
    feature_layers=dict(P1="conv1_relu", P2="res2c_out", P3="res3d_out", P4="res4f_out", P5="res5c_out"),
)
@builder.with_args_doc(
    input_shape="(height, width, 3), each at least 32; only with `include_top=False` may it\n"
    "        differ from (224, 224, 3).",
    feature_map="the 7x7x2048 feature map at 224x224", vector="a 2048-vector",
)
def ResNet50(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name="resnet50"):
    """Builds ResNet50 (25.6M parameters; 224x224 BGR inputs minus the ImageNet mean)."""
    build = builder.start("resnet50", locals())

    # Stage 1: 7x7/2 convolution and 3x3/2 max pool ------------------- 224x224x3
    x = layers.ZeroPadding2D(padding=(3, 3), name="conv1_pad")(build.input)
    x = layers.Conv2D(64, (7, 7), strides=(2, 2), kernel_initializer="he_normal", name="conv1")(x)
    x = layers.BatchNormalization(axis=3, name="bn_conv1")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)  # 112x112x64
    x = layers.ZeroPadding2D(padding=(1, 1), name="pool1_pad")(x)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)  # 56x56x64

    # Stage 2 ----------------------------------------------------------- 56x56x64
    x = conv_block(x, 3, [64, 64, 256], stage=2, block="a", strides=(1, 1))
    x = identity_block(x, 3, [64, 64, 256], stage=2, block="b")
    x = identity_block(x, 3, [64, 64, 256], stage=2, block="c")  # 56x56x256

    # Stage 3 ----------------------------------------------------------- 56x56x256
    x = conv_block(x, 3, [128, 128, 512], stage=3, block="a")
    x = identity_block(x, 3, [128, 128, 512], stage=3, block="b")
    x = identity_block(x, 3, [128, 128, 512], stage=3, block="c")
    x = identity_block(x, 3, [128, 128, 512], stage=3, block="d")  # 28x28x512

    # Stage 4 ----------------------------------------------------------- 28x28x512
    x = conv_block(x, 3, [256, 256, 1024], stage=4, block="a")
    x = identity_block(x, 3, [256, 256, 1024], stage=4, block="b")
    x = identity_block(x, 3, [256, 256, 1024], stage=4, block="c")
    x = identity_block(x, 3, [256, 256, 1024], stage=4, block="d")
    x = identity_block(x, 3, [256, 256, 1024], stage=4, block="e")
    x = identity_block(x, 3, [256, 256, 1024], stage=4, block="f")  # 14x14x1024

    # Stage 5 ----------------------------------------------------------- 14x14x1024
    x = conv_block(x, 3, [512, 512, 2048], stage=5, block="a")
    x = identity_block(x, 3, [512, 512, 2048], stage=5, block="b")
    x = identity_block(x, 3, [512, 512, 2048], stage=5, block="c")  # 7x7x2048

    x = build.top(x, dense_name="fc1000")  # 1000 classes, or the features
    return build.finish(x)


def identity_block(input_tensor, kernel_size, filters, stage, block):
    """The bottleneck with the input added back unchanged (its channels equal `filters[2]`)."""
    x = bottleneck(input_tensor, kernel_size, filters, stage, block)
    x = layers.add([x, input_tensor])
    return layers.Activation("relu", name=f"res{stage}{block}_out")(x)


def conv_block(input_tensor, kernel_size, filters, stage, block, strides=(2, 2)):
    """The bottleneck with a strided 1x1 convolution as shortcut (the first block of a stage).

    The first 1x1 convolution and the shortcut both stride by `strides`: (2, 2) halves the grid
    from stage 3 on; stage 2 keeps it with (1, 1). The shortcut comes after the main path, as in
    the reference code, and the weights follow that order.
    """
    x = bottleneck(input_tensor, kernel_size, filters, stage, block, strides)
    shortcut = layers.Conv2D(
        filters[2], (1, 1), strides=strides, kernel_initializer="he_normal",
        name=f"res{stage}{block}_branch1",
    )(input_tensor)
    shortcut = layers.BatchNormalization(axis=3, name=f"bn{stage}{block}_branch1")(shortcut)

    x = layers.add([x, shortcut])
    return layers.Activation("relu", name=f"res{stage}{block}_out")(x)


def bottleneck(input_tensor, kernel_size, filters, stage, block, strides=(1, 1)):
    """The main path of both blocks: 1x1 -> kernel_size -> 1x1 convolutions, each with BN.

    Args:
      kernel_size: kernel of the middle convolution.
      filters: the three convolutions' filters.
      stage, block: e.g. 2 and "b", naming the layers res2b_branch2a, bn2b_branch2a, ...
      strides: strides of the first 1x1 convolution.
    """
    filters1, filters2, filters3 = filters
    conv_name_base = f"res{stage}{block}_branch"
    bn_name_base = f"bn{stage}{block}_branch"

    x = layers.Conv2D(
        filters1, (1, 1), strides=strides, kernel_initializer="he_normal",
        name=conv_name_base + "2a",
    )(input_tensor)
    x = layers.BatchNormalization(axis=3, name=bn_name_base + "2a")(x)
    x = layers.Activation("relu")(x)

    x = layers.Conv2D(
        filters2, kernel_size, padding="same", kernel_initializer="he_normal",
        name=conv_name_base + "2b",
    )(x)
    x = layers.BatchNormalization(axis=3, name=bn_name_base + "2b")(x)
    x = layers.Activation("relu")(x)

    x = layers.Conv2D(
        filters3, (1, 1), kernel_initializer="he_normal", name=conv_name_base + "2c"
    )(x)
    return layers.BatchNormalization(axis=3, name=bn_name_base + "2c")(x)


def preprocess_input(x, data_format=None):
    """RGB to BGR, minus the ImageNet mean pixel (caffe style); the caller's array is unchanged."""
    return imagenet.preprocess_input(x, mode="caffe", data_format=data_format)
