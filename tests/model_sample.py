"""Which registry models an expensive registry-wide test runs for.

DenseNet-169 and -201 are DenseNet-121's builder with longer blocks, ResNet-152 is ResNet-101's,
ResNet101V2 and ResNet152V2 are ResNet50V2's, EfficientNet-B1 ... B7 are B0's with more blocks per
stage, more channels and a larger default input, ConvNeXt-Small ... XLarge are ConvNeXt-Tiny's
with a deeper third stage and (Base on) wider stages: the same module, preprocessing and feature
levels, each the last block of the same stage (tests/core/test_registry.py checks it). A
registry-wide test that builds and runs whole networks (preprocessing wired in, a .keras round
trip, feature maps at three sizes) proves nothing on them that the shallower twin does not, and
they cost the most (DenseNet-201: 21 s for the preprocessing test alone on CI's 2 cores, 2 min for
the three tests and both models; EfficientNet-B7 is 3.5 times DenseNet-201's size and runs at
600x600; ConvNeXt-XLarge has 350 million parameters). tests/models/test_densenet.py,
test_resnet.py, test_resnet_v2.py, test_efficientnet.py and test_convnext.py still prove each member's layout and published weights, and the cheap registry-wide tests
(declared feature layers, block prefixes, exports by the package) still take every model.
"""

from keras_nets import list_models

DEEPER_TWINS = {
    "densenet169": "densenet121",
    "densenet201": "densenet121",
    "resnet152": "resnet101",
    "resnet101_v2": "resnet50_v2",
    "resnet152_v2": "resnet50_v2",
    **{f"efficientnet_b{k}": "efficientnet_b0" for k in range(1, 8)},
    **{f"convnext_{size}": "convnext_tiny" for size in ("small", "base", "large", "xlarge")},
}


def family_sample(names=None):
    """`names` (default: the registry) without the deeper twins."""
    return [
        name for name in (list_models() if names is None else names) if name not in DEEPER_TWINS
    ]
