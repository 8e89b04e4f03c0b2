"""keras-nets: the classic ImageNet CNNs in Keras 3, layer by layer, loading the published weights.

    from keras_nets import Xception
    from keras_nets.xception import preprocess_input, decode_predictions

Builders are imported on first use, so `import keras_nets` stays cheap.
"""

import importlib

from keras_nets.registry import MODELS, create_model, get_config, list_models

__version__ = "0.1.0"

# Public name -> module that defines it, resolved on first use by __getattr__ below.
_LAZY_EXPORTS = {
    **{config.builder: f"keras_nets.{config.family}" for config in MODELS.values()},
    "decode_predictions": "keras_nets.imagenet",
    "compile_for_inference": "keras_nets.inference",
    "export": "keras_nets.inference",
}

__all__ = ["create_model", "decode_predictions", "get_config", "list_models", *_LAZY_EXPORTS]


def __getattr__(name):
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module 'keras_nets' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)


def __dir__():
    return sorted(__all__)
