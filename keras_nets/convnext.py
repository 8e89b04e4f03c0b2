"""ConvNeXt-Tiny, -Small, -Base, -Large and -XLarge, layer by layer.

Liu et al., "A ConvNet for the 2020s" (CVPR 2022). A ResNet modernised step by step towards a
vision Transformer: a 4x4/4 "patchify" stem, four stages of (3, 3, 9, 3) blocks (Tiny) or
(3, 3, 27, 3) (the others) at widths doubling from 96 (Tiny, Small), 128 (Base), 192 (Large) or
256 (XLarge), each stage after the first opened by a LayerNorm and a 2x2/2 convolution. A block is
a 7x7 depthwise convolution, LayerNorm, an inverted bottleneck of two pointwise layers (4x wider,
GELU between) and a per-channel layer scale, added to its input. Layer names and weighted-layer
order are those of `keras.applications.convnext`, so the published `convnext_<size>[_notop].h5`
files load with a plain `model.load_weights(path)`:

- as in Keras, the stem and each downsampling step are nested Sequential models
  ("convnext_tiny_stem", "convnext_tiny_downsampling_block_0", ...): the published files hold
  their convolution's and LayerNorm's weights as one layer each;
- the depthwise convolution is a Conv2D with one group per channel (kernel 7x7x1xC), the pointwise
  ones are Dense layers on the last axis (the official code's choice);
- the layer scale is `keras_nets.core.layers.LayerScale`, the one layer keras-nets adds to Keras:
  a saved `.keras` ConvNeXt needs keras-nets imported to load;
- layer names start with the registry name ("convnext_tiny_..."), Keras' default model name,
  whatever `name` the model gets: the feature levels and block prefixes are declared by them.

As in Keras, the input normalisation is part of the model (for 3-channel inputs, as Keras adds
it), so `preprocess_input` returns its input unchanged: a Normalization by the ImageNet mean and
std of 0-255 pixels, constants rather than weights. Without the top, Keras ends with a
LayerNormalization of the last feature map (or of its average or maximum with `pooling`), which
the notop files hold; so does this module, and names it "<registry name>_final_layernorm".
"""

from keras import Sequential, layers

from keras_nets.core import builder
from keras_nets.core.imagenet import decode_predictions  # noqa: F401 - part of the module's API
from keras_nets.core.layers import LayerScale
from keras_nets.core.registry import register_model

# Blocks per stage and the stages' widths (Keras' MODEL_CONFIGS, the paper's section 3): Small is
# Tiny with a deeper third stage; Base, Large and XLarge are Small wider.
VARIANTS = {
    "convnext_tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "convnext_small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "convnext_base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "convnext_large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "convnext_xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048)),
}
LAYER_SCALE_INIT = 1e-6  # each block starts as nearly the identity
EPSILON = 1e-6  # of every LayerNormalization
IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# Evaluation pipeline: the official evaluation (facebookresearch/ConvNeXt, main.py `--crop_pct`
# 0.875 at 224, bicubic): the default. Feature levels: the last block of each stage (strides 4,
# 8, 16, 32), and at stride 32 the LayerNorm that ends the model without its top (also Grad-CAM's
# default layer); there is no stride-2 map (the stem strides by 4), so no P1, as in AlexNet. The
# blocks unfrozen first: from the stride-32 stage on (its downsampling step), or from the stride-16
# one. Layer names start with the registry name, so each entry spells them out.
ENTRY = dict(default_size=224, min_size=32, preprocessing="none")


@register_model(
    "convnext_tiny", **ENTRY,
    unfreeze_prefixes=("convnext_tiny_downsampling_block_2", "convnext_tiny_downsampling_block_1"),
    feature_layers=dict(P2="convnext_tiny_stage_0_block_2_add", P3="convnext_tiny_stage_1_block_2_add", P4="convnext_tiny_stage_2_block_8_add", P5="convnext_tiny_final_layernorm"),
)
def ConvNeXtTiny(include_top=True, include_preprocessing=True, weights="imagenet",
                 input_tensor=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", name="convnext_tiny"):
    return ConvNeXt("convnext_tiny", locals())


@register_model(
    "convnext_small", **ENTRY,
    unfreeze_prefixes=("convnext_small_downsampling_block_2", "convnext_small_downsampling_block_1"),
    feature_layers=dict(P2="convnext_small_stage_0_block_2_add", P3="convnext_small_stage_1_block_2_add", P4="convnext_small_stage_2_block_26_add", P5="convnext_small_final_layernorm"),
)
def ConvNeXtSmall(include_top=True, include_preprocessing=True, weights="imagenet",
                  input_tensor=None, input_shape=None, pooling=None, classes=1000,
                  classifier_activation="softmax", name="convnext_small"):
    return ConvNeXt("convnext_small", locals())


@register_model(
    "convnext_base", **ENTRY,
    unfreeze_prefixes=("convnext_base_downsampling_block_2", "convnext_base_downsampling_block_1"),
    feature_layers=dict(P2="convnext_base_stage_0_block_2_add", P3="convnext_base_stage_1_block_2_add", P4="convnext_base_stage_2_block_26_add", P5="convnext_base_final_layernorm"),
)
def ConvNeXtBase(include_top=True, include_preprocessing=True, weights="imagenet",
                 input_tensor=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", name="convnext_base"):
    return ConvNeXt("convnext_base", locals())


@register_model(
    "convnext_large", **ENTRY,
    unfreeze_prefixes=("convnext_large_downsampling_block_2", "convnext_large_downsampling_block_1"),
    feature_layers=dict(P2="convnext_large_stage_0_block_2_add", P3="convnext_large_stage_1_block_2_add", P4="convnext_large_stage_2_block_26_add", P5="convnext_large_final_layernorm"),
)
def ConvNeXtLarge(include_top=True, include_preprocessing=True, weights="imagenet",
                  input_tensor=None, input_shape=None, pooling=None, classes=1000,
                  classifier_activation="softmax", name="convnext_large"):
    return ConvNeXt("convnext_large", locals())


@register_model(
    "convnext_xlarge", **ENTRY,
    unfreeze_prefixes=("convnext_xlarge_downsampling_block_2", "convnext_xlarge_downsampling_block_1"),
    feature_layers=dict(P2="convnext_xlarge_stage_0_block_2_add", P3="convnext_xlarge_stage_1_block_2_add", P4="convnext_xlarge_stage_2_block_26_add", P5="convnext_xlarge_final_layernorm"),
)
def ConvNeXtXLarge(include_top=True, include_preprocessing=True, weights="imagenet",
                   input_tensor=None, input_shape=None, pooling=None, classes=1000,
                   classifier_activation="softmax", name="convnext_xlarge"):
    return ConvNeXt("convnext_xlarge", locals())


DOC = """Builds ConvNeXt-{size_name} ({parameters} parameters; 224x224 RGB, 0-255).

    Args:
      include_top: whether to end with the 1000-class ImageNet classifier.
      include_preprocessing: whether the model normalises its 0-255 input itself (3 channels
        only, as Keras); keep it with ImageNet weights.
      weights: None (random initialisation), "imagenet" (published weights, downloaded once to
        the Keras cache) or the path of a weights file.
      input_tensor: optional Keras tensor to use as the model's input.
      input_shape: (height, width, channels), each side at least 32; default (224, 224, 3) with
        the top, any size without it. With ImageNet weights and the top it must be (224, 224, 3).
      pooling: with `include_top=False`: None (the 7x7x{channels} feature map at 224x224), "avg"
        or "max" (a {channels}-vector); layer-normalised either way, as Keras does.
      classes: number of classes of the top classifier (1000 with ImageNet weights).
      classifier_activation: activation of the top layer; None returns logits.
      name: the model's name (its layers keep the registry name as their prefix).
    """

ConvNeXtTiny.__doc__ = DOC.format(size_name="Tiny", parameters="28.6M", channels=768)
ConvNeXtSmall.__doc__ = DOC.format(size_name="Small", parameters="50.2M", channels=768)
ConvNeXtBase.__doc__ = DOC.format(size_name="Base", parameters="88.6M", channels=1024)
ConvNeXtLarge.__doc__ = DOC.format(size_name="Large", parameters="197.8M", channels=1536)
ConvNeXtXLarge.__doc__ = DOC.format(size_name="XLarge", parameters="350.2M", channels=2048)


def ConvNeXt(model_name, arguments):
    """The stem, four stages of ConvNeXt blocks with a downsampling step before stages 1-3, and
    the top, for the builder `arguments` of ConvNeXtTiny ... XLarge.

    Shape comments follow ConvNeXt-Tiny at 224x224.
    """
    depths, widths = VARIANTS[model_name]
    build = builder.start(model_name, arguments)
    prefix = model_name
    x = build.input

    # Preprocessing in the graph: (x - mean) / std of 0-255 pixels -------- 224x224x3
    if arguments["include_preprocessing"] and x.shape[-1] == 3:
        x = layers.Normalization(
            mean=list(IMAGENET_MEAN_RGB),
            variance=[std**2 for std in IMAGENET_STDDEV_RGB],
            name=f"{prefix}_prestem_normalization",
        )(x)

    # Stem: 4x4/4 convolution ("patchify"), LayerNorm -------------------- 224x224x3
    x = Sequential(
        [
            layers.Conv2D(widths[0], 4, strides=4, name=f"{prefix}_stem_conv"),
            layers.LayerNormalization(epsilon=EPSILON, name=f"{prefix}_stem_layernorm"),
        ],
        name=f"{prefix}_stem",
    )(x)  # 56x56x96

    # Stages 0-3, each but the first opened by LayerNorm and a 2x2/2 convolution ------ 56x56x96
    for stage, (blocks, width) in enumerate(zip(depths, widths)):
        if stage > 0:
            x = Sequential(
                [
                    layers.LayerNormalization(
                        epsilon=EPSILON, name=f"{prefix}_downsampling_layernorm_{stage - 1}"
                    ),
                    layers.Conv2D(
                        width, 2, strides=2, name=f"{prefix}_downsampling_conv_{stage - 1}"
                    ),
                ],
                name=f"{prefix}_downsampling_block_{stage - 1}",
            )(x)
        for block in range(blocks):
            x = convnext_block(x, width, name=f"{prefix}_stage_{stage}_block_{block}")
    # stage 0: 56x56x96, stage 1: 28x28x192, stage 2: 14x14x384, stage 3: 7x7x768

    if build.include_top:  # average, LayerNorm, classifier
        x = layers.GlobalAveragePooling2D(name=f"{prefix}_head_gap")(x)
        x = layers.LayerNormalization(epsilon=EPSILON, name=f"{prefix}_head_layernorm")(x)
        x = layers.Dense(
            build.classes, activation=build.classifier_activation, name=f"{prefix}_head_dense"
        )(x)  # 1000 classes
    else:  # pooled or not, LayerNorm (unnamed in Keras; P5 of the feature levels here)
        x = layers.LayerNormalization(epsilon=EPSILON, name=f"{prefix}_final_layernorm")(
            build.pooled_features(x)
        )
    return build.finish(x)


def convnext_block(inputs, width, name):
    """7x7 depthwise convolution, LayerNorm, 1x1 to 4x the width (GELU), 1x1 back, layer scale;
    added to the block's input.

    Keras' "_identity" layer stands where stochastic depth would drop the branch in training
    (rate 0 in every published variant): a linear Activation, kept for its name.
    """
    x = layers.Conv2D(
        width, 7, padding="same", groups=width, name=f"{name}_depthwise_conv"
    )(inputs)
    x = layers.LayerNormalization(epsilon=EPSILON, name=f"{name}_layernorm")(x)
    x = layers.Dense(4 * width, name=f"{name}_pointwise_conv_1")(x)
    x = layers.Activation("gelu", name=f"{name}_gelu")(x)
    x = layers.Dense(width, name=f"{name}_pointwise_conv_2")(x)
    x = LayerScale(LAYER_SCALE_INIT, width, name=f"{name}_layer_scale")(x)
    x = layers.Activation("linear", name=f"{name}_identity")(x)
    return layers.Add(name=f"{name}_add")([inputs, x])


def preprocess_input(x, data_format=None):
    """Returns `x` unchanged: the model normalises its own 0-255 input."""
    return x
