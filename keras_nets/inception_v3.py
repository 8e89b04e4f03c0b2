"""Inception v3, layer by layer.

Szegedy et al., "Rethinking the Inception Architecture for Computer Vision" (CVPR 2016).
Layer names and weighted-layer order are those of `keras.applications.InceptionV3`, so the published
`inception_v3_weights_tf_dim_ordering_tf_kernels.h5` files load with a plain
`model.load_weights(path)`. As in the reference code, the convolutions are left unnamed; only the
concatenations carry names, mixed0 to mixed10.

`aux_logits=True` adds the auxiliary classifier of the paper (and of the TF-slim model) on mixed7,
as a second output for training. It is added after the weights are loaded, so it never shifts the
layer order the published files follow, and it always starts freshly initialised.
"""

import keras
from keras import layers

from keras_nets.core import blocks, builder, imagenet
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.registry import register_model


@register_model(
    "inception_v3", default_size=299, min_size=75, preprocessing="tf",
    unfreeze_prefixes=("mixed8", "mixed7"),
    feature_layers=dict(P1="stem_conv3", P2="stem_conv5", P3="mixed2", P4="mixed7", P5="mixed10"),
)
@builder.with_args_doc(
    input_shape="(height, width, 3), each at least 75; only with `include_top=False` may it\n"
    "        differ from (299, 299, 3).",
    feature_map="the 8x8x2048 feature map at 299x299", vector="a 2048-vector",
    more="\n      aux_logits: with `include_top=True`, also return the auxiliary classifier's"
    " output\n        (same activation): the model then has two outputs, `[predictions,"
    " aux_predictions]`,\n        e.g. for `compile(loss=[loss, loss], loss_weights=[1.0, 0.4])`."
    " `weights` fill the main\n        network; the auxiliary classifier starts freshly initialised.",
)
def InceptionV3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="inception_v3", *, aux_logits=False):
    """Builds Inception v3 (23.9M parameters; 299x299 inputs scaled to [-1, 1])."""
    if aux_logits not in (True, False):
        raise ValueError(f"aux_logits={aux_logits!r}: expected True or False")
    if aux_logits and not include_top:
        raise ValueError(
            f"aux_logits=True with include_top={include_top!r}: the auxiliary classifier is a "
            "second classifier output, so it needs include_top=True"
        )
    build = builder.start("inception_v3", locals())

    # Stem ------------------------------------------------------------ 299x299x3
    x = conv2d_bn(build.input, 32, 3, 3, strides=(2, 2), padding="valid")
    x = conv2d_bn(x, 32, 3, 3, padding="valid")
    x = conv2d_bn(x, 64, 3, 3, name="stem_conv3")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)  # 73x73x64

    x = conv2d_bn(x, 80, 1, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, 3, padding="valid", name="stem_conv5")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)  # 35x35x192

    # 35x35 Inception blocks ------------------------------------------
    x = inception_a(x, pool_filters=32, name="mixed0")  # 35x35x256
    x = inception_a(x, pool_filters=64, name="mixed1")  # 35x35x288
    x = inception_a(x, pool_filters=64, name="mixed2")  # 35x35x288

    x = reduction_a(x, name="mixed3")  # 17x17x768

    # 17x17 blocks with factorised 7x7 convolutions --------------------
    x = inception_b(x, filters_7x7=128, name="mixed4")
    x = inception_b(x, filters_7x7=160, name="mixed5")
    x = inception_b(x, filters_7x7=160, name="mixed6")
    x = inception_b(x, filters_7x7=192, name="mixed7")  # 17x17x768

    x = reduction_b(x, name="mixed8")  # 8x8x1280

    # 8x8 blocks with expanded filter banks ----------------------------
    x = inception_c(x, index=0, name="mixed9")  # 8x8x2048
    x = inception_c(x, index=1, name="mixed10")  # 8x8x2048

    x = build.top(x)  # 1000 classes, or the features
    model = build.finish(x)
    if not aux_logits:
        return model

    # Auxiliary classifier on mixed7, added after loading ---------------- 17x17x768
    aux = auxiliary_classifier(model.get_layer("mixed7").output, build.classes, classifier_activation)
    return keras.Model(model.input, [model.output, aux], name=name)


def conv2d_bn(x, filters, num_row, num_col, padding="same", strides=(1, 1), name=None):
    """Convolution (no bias), BatchNormalization (no scale) and ReLU.

    With a `name`, the layers are `name + "_conv"`, `name + "_bn"` and `name`; without one they
    get Keras' automatic names, as in the reference code.
    """
    return blocks.conv_bn(
        x, filters, (num_row, num_col), strides=strides, padding=padding,
        conv_name=None if name is None else f"{name}_conv",
        bn_name=None if name is None else f"{name}_bn", activation_name=name, axis=3, scale=False,
    )


def inception_a(x, pool_filters, name):
    """1x1, 5x5, double 3x3 and pooled 1x1 branches, concatenated (mixed0-mixed2)."""
    branch1x1 = conv2d_bn(x, 64, 1, 1)

    branch5x5 = conv2d_bn(x, 48, 1, 1)
    branch5x5 = conv2d_bn(branch5x5, 64, 5, 5)

    branch3x3dbl = conv2d_bn(x, 64, 1, 1)
    branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3)
    branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3)

    branch_pool = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    branch_pool = conv2d_bn(branch_pool, pool_filters, 1, 1)
    return layers.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=3, name=name)


def reduction_a(x, name):
    """Grid reduction 35x35 -> 17x17: strided 3x3, strided double 3x3 and max pool (mixed3)."""
    branch3x3 = conv2d_bn(x, 384, 3, 3, strides=(2, 2), padding="valid")

    branch3x3dbl = conv2d_bn(x, 64, 1, 1)
    branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3)
    branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3, strides=(2, 2), padding="valid")

    branch_pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    return layers.concatenate([branch3x3, branch3x3dbl, branch_pool], axis=3, name=name)


def inception_b(x, filters_7x7, name):
    """7x7 convolutions factorised into 1x7 and 7x1, single and double (mixed4-mixed7)."""
    branch1x1 = conv2d_bn(x, 192, 1, 1)

    branch7x7 = conv2d_bn(x, filters_7x7, 1, 1)
    branch7x7 = conv2d_bn(branch7x7, filters_7x7, 1, 7)
    branch7x7 = conv2d_bn(branch7x7, 192, 7, 1)

    branch7x7dbl = conv2d_bn(x, filters_7x7, 1, 1)
    branch7x7dbl = conv2d_bn(branch7x7dbl, filters_7x7, 7, 1)
    branch7x7dbl = conv2d_bn(branch7x7dbl, filters_7x7, 1, 7)
    branch7x7dbl = conv2d_bn(branch7x7dbl, filters_7x7, 7, 1)
    branch7x7dbl = conv2d_bn(branch7x7dbl, 192, 1, 7)

    branch_pool = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    branch_pool = conv2d_bn(branch_pool, 192, 1, 1)
    return layers.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], axis=3, name=name)


def reduction_b(x, name):
    """Grid reduction 17x17 -> 8x8: strided 3x3, strided 7x7-then-3x3 and max pool (mixed8)."""
    branch3x3 = conv2d_bn(x, 192, 1, 1)
    branch3x3 = conv2d_bn(branch3x3, 320, 3, 3, strides=(2, 2), padding="valid")

    branch7x7x3 = conv2d_bn(x, 192, 1, 1)
    branch7x7x3 = conv2d_bn(branch7x7x3, 192, 1, 7)
    branch7x7x3 = conv2d_bn(branch7x7x3, 192, 7, 1)
    branch7x7x3 = conv2d_bn(branch7x7x3, 192, 3, 3, strides=(2, 2), padding="valid")

    branch_pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    return layers.concatenate([branch3x3, branch7x7x3, branch_pool], axis=3, name=name)


def inception_c(x, index, name):
    """3x3 branches split into parallel 1x3 and 3x1 convolutions (mixed9, mixed10).

    The reference names the inner concatenation of the block's first 3x3 branch
    `mixed9_<index>` in both blocks, and leaves the second one unnamed.
    """
    branch1x1 = conv2d_bn(x, 320, 1, 1)

    branch3x3 = conv2d_bn(x, 384, 1, 1)
    branch3x3_1 = conv2d_bn(branch3x3, 384, 1, 3)
    branch3x3_2 = conv2d_bn(branch3x3, 384, 3, 1)
    branch3x3 = layers.concatenate([branch3x3_1, branch3x3_2], axis=3, name=f"mixed9_{index}")

    branch3x3dbl = conv2d_bn(x, 448, 1, 1)
    branch3x3dbl = conv2d_bn(branch3x3dbl, 384, 3, 3)
    branch3x3dbl_1 = conv2d_bn(branch3x3dbl, 384, 1, 3)
    branch3x3dbl_2 = conv2d_bn(branch3x3dbl, 384, 3, 1)
    branch3x3dbl = layers.concatenate([branch3x3dbl_1, branch3x3dbl_2], axis=3)

    branch_pool = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    branch_pool = conv2d_bn(branch_pool, 192, 1, 1)
    return layers.concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool], axis=3, name=name)


def auxiliary_classifier(x, classes, classifier_activation):
    """The auxiliary head of TF-slim's InceptionV3 (its AuxLogits on Mixed_6e, Keras' mixed7).

    5x5/3 average pool, 1x1 conv to 128 and 5x5 'valid' conv to 768 (each with BN and ReLU),
    then a classifier. As in TF-slim the 5x5 convolution shrinks to fit a smaller feature map;
    here the pool does too, so inputs down to 75x75 work. The global average pool turns the
    1x1x768 map of a 299x299 input (or the larger map of a larger input) into a vector.
    """
    height, width = x.shape[1:3]  # 17x17x768 at 299x299
    pool_size = (min(5, height), min(5, width))
    x = layers.AveragePooling2D(pool_size, strides=(3, 3), padding="valid", name="aux_pool")(x)
    x = conv2d_bn(x, 128, 1, 1, name="aux_conv1")  # 5x5x128
    height, width = x.shape[1:3]
    x = conv2d_bn(x, 768, min(5, height), min(5, width), padding="valid", name="aux_conv2")
    # 1x1x768
    x = layers.GlobalAveragePooling2D(name="aux_global_pool")(x)
    return layers.Dense(classes, activation=classifier_activation, name="aux_predictions")(x)


def preprocess_input(x, data_format=None):
    """Scales RGB pixels from 0-255 to [-1, 1]; the caller's array is left unchanged."""
    return imagenet.preprocess_input(x, mode="tf", data_format=data_format)
