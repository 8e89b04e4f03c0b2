"""Which registry models an expensive registry-wide test runs for.

DenseNet-169 and -201 are DenseNet-121's builder with longer blocks, the same preprocessing and
the same feature layers (tests/core/test_registry.py checks it): a registry-wide test that builds
and runs whole networks (preprocessing wired in, a .keras round trip, feature maps at three sizes)
proves nothing on them that DenseNet-121 does not, and they cost the most (DenseNet-201: 21 s for
the preprocessing test alone on CI's 2 cores, 2 min for the three tests and both models).
tests/models/test_densenet.py still proves every member's layout and published weights, and the
cheap registry-wide tests (declared feature layers, block prefixes, exports by the package) still
take every model.
"""

from keras_nets import list_models

DEEPER_TWINS = {"densenet169": "densenet121", "densenet201": "densenet121"}


def family_sample(names=None):
    """`names` (default: the registry) without the deeper twins."""
    return [
        name for name in (list_models() if names is None else names) if name not in DEEPER_TWINS
    ]
