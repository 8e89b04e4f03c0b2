"""keras-nets: the classic ImageNet CNNs in Keras 3, layer by layer, loading the published weights.

    from keras_nets import Xception
    from keras_nets.xception import preprocess_input, decode_predictions

Builders are imported on first use, so `import keras_nets` stays cheap. Models register
themselves with `register_model` (see keras_nets.core.registry), your own too.
"""

import importlib
import importlib.util
import sys

from keras_nets.core import factory as _factory
from keras_nets.core import registry as _registry
from keras_nets.core.factory import create_model, get_config, list_models  # noqa: F401 - the API
from keras_nets.core.registry import register_model  # noqa: F401 - the API

__version__ = "0.1.0"

# Public name -> module that defines it, resolved on first use by __getattr__ below; the
# builders (Xception, ...) come from the registry, which imports Keras only when first asked.
_LAZY_EXPORTS = {
    "decode_predictions": "keras_nets.core.imagenet",
    "feature_info": "keras_nets.core.features",
    "compile_for_inference": "keras_nets.inference",
    "export": "keras_nets.inference",
    "evaluate": "keras_nets.evaluation",
    "eval_transform": "keras_nets.images.transforms",
}

_EAGER_EXPORTS = ["create_model", "get_config", "list_models", "register_model"]


def _builders():
    """{builder name: module name} of the registry's own models."""
    own = [f"keras_nets.{module}" for module in _registry.MODEL_MODULES]
    return {c.builder: c.module_name for c in _factory.models().values() if c.module_name in own}


class _RegisterLayersWithKeras:
    """Registers keras-nets' own layer (`keras_nets.core.layers.LayerScale`, ConvNeXt's) with
    Keras once Keras is imported, so that `keras.saving.load_model` reads a saved ConvNeXt after
    a bare `import keras_nets`, whichever of the two comes first, without `import keras_nets`
    importing Keras itself: a finder on `sys.meta_path` that answers nothing, and only wraps the
    loading of the `keras` module to import `keras_nets.core.layers` right after it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        _remove_hook()  # once, and not for the search just below
        spec = importlib.util.find_spec("keras")
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            exec_module = spec.loader.exec_module

            def exec_then_register(module):
                exec_module(module)
                importlib.import_module("keras_nets.core.layers")

            spec.loader.exec_module = exec_then_register
        return spec


def _remove_hook():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterLayersWithKeras)]


if "keras" in sys.modules:
    importlib.import_module("keras_nets.core.layers")
elif not any(isinstance(f, _RegisterLayersWithKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterLayersWithKeras())


def __getattr__(name):
    if name == "__all__":
        return [*_EAGER_EXPORTS, *_LAZY_EXPORTS, *_builders()]
    # `from keras_nets import pretrained` asks here before importing the submodule: answering
    # without the registry keeps commands such as `keras-nets weights` free of Keras' start-up.
    # `keras_nets.registry` after a bare `import keras_nets` is the old path, as it always was.
    if name == "registry":
        return importlib.import_module("keras_nets.registry")
    is_submodule = importlib.util.find_spec(f"{__name__}.{name}") is not None
    if name.startswith("_") or is_submodule or not (name in _LAZY_EXPORTS or name in _builders()):
        raise AttributeError(f"module 'keras_nets' has no attribute {name!r}")
    module = _LAZY_EXPORTS.get(name) or _builders()[name]
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(__getattr__("__all__"))
