"""Which registry models an expensive registry-wide test runs for.

DenseNet-169 and -201 are DenseNet-121's builder with longer blocks, ResNet-152 is ResNet-101's,
ResNet101V2 and ResNet152V2 are ResNet50V2's, EfficientNet-B1 ... B7 are B0's with more blocks per
stage, more channels and a larger default input, ConvNeXt-Small ... XLarge are ConvNeXt-Tiny's
with a deeper third stage and (Base on) wider stages: the same module, preprocessing and feature
levels, each the last block of the same stage (tests/core/test_registry.py checks it).
EfficientNetV2-B1 ... B3 are B0's the same way; S, M and L have stage tables of their own (M and L
a seventh stage, at stride 32) and scale their input to [-1, 1] where B0-B3 take ImageNet's mean
and std, but with the same blocks, the same in-graph preprocessing entry ("none") and feature
levels in the same stages, so B0 stands for them too (their scaling: test_efficientnet_v2.py). A
registry-wide test that builds and runs whole networks (preprocessing wired in, a .keras round
trip, feature maps at three sizes) proves nothing on them that the shallower twin does not, and
they cost the most (DenseNet-201: 21 s for the preprocessing test alone on CI's 2 cores, 2 min for
the three tests and both models; EfficientNet-B7 is 3.5 times DenseNet-201's size and runs at
600x600; ConvNeXt-XLarge has 350 million parameters). What is each deeper member's own (its
README row, its feature levels, its published file) is checked on one build of it
(tests/core/test_features.py); its family's tests (tests/models/) prove its layout and published
weights; the cheap registry-wide tests (declared feature layers, block prefixes, exports by the
package) still take every model.
"""

from keras_nets import list_models

DEEPER_TWINS = {
    "densenet169": "densenet121",
    "densenet201": "densenet121",
    "resnet152": "resnet101",
    "resnet101_v2": "resnet50_v2",
    "resnet152_v2": "resnet50_v2",
    **{f"efficientnet_b{k}": "efficientnet_b0" for k in range(1, 8)},
    **{f"efficientnet_v2_{v}": "efficientnet_v2_b0" for v in ("b1", "b2", "b3", "s", "m", "l")},
    **{f"convnext_{size}": "convnext_tiny" for size in ("small", "base", "large", "xlarge")},
}

# NASNet-A Large is NASNet-A Mobile's cells, wider, with more of them per stage and a larger
# stem: not Mobile's builder at another depth (its own block prefixes and cell numbers), but the
# same kinds of layer and the same preprocessing, at 88.9 million parameters (about 45 s per
# whole-network test on CI's cores). The registry-wide tests that build and run whole networks
# take one small member per family (issue 27), so Mobile stands for it there; its own block
# prefixes are checked on it (tests/core/test_registry.py), and its README row, levels and
# published file on one build, as a deeper twin's are.
LARGER_MEMBERS = {"nasnet_large": "nasnet_mobile"}
# Models the whole-network registry-wide tests leave to their family's smaller member.
SAMPLED_OUT = {**DEEPER_TWINS, **LARGER_MEMBERS}


def family_sample(names=None):
    """`names` (default: the registry) without the models SAMPLED_OUT."""
    return [name for name in (list_models() if names is None else names) if name not in SAMPLED_OUT]


# The smallest member of each family issue 27 added: tests/inference/test_int8.py runs their fast
# path in float32 and in int8 on one conversion, so tests/inference/test_inference.py leaves them.
NEWER_FAMILIES = (
    "resnet101",
    "resnet50_v2",
    "efficientnet_b0",
    "efficientnet_v2_b0",
    "nasnet_mobile",
    "convnext_tiny",
)
