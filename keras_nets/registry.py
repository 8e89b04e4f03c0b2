"""The model registry: one small config per model, in the spirit of timm and kimm.

Each model module declares its own entries with `@register_model(...)` on its builder, next to the
network; this module only collects them. A config says what a model is, not how to build it: its
builder, the input size it was trained at, the smallest input it accepts, how its inputs are
preprocessed, whether published ImageNet weights exist and where fine-tuning may start. Builders,
the CLI and the benchmarks all read these configs, so the facts live once, beside the network.

Collecting imports the model modules (and so Keras), which happens on the first `list_models`,
`get_config` or `create_model` call: `import keras_nets` stays cheap.
"""

import ast
import collections.abc
import dataclasses
import functools
import importlib
import importlib.util

PREPROCESSING = ("tf", "caffe", "torch", "none")  # imagenet.preprocess_input modes, or built in
# The modules under keras_nets that register models, in the order of README.md's model table.
MODEL_MODULES = (
    "xception",
    "inception_v3",
    "resnet50",
    "mobilenet_v2",
    "vgg",
    "mobilenet",
    "mobilenet_v3",
    "densenet",
    "inception_resnet_v2",
    "shufflenet_v2",
    "alexnet",
)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What a registry model is. Later fields have defaults, so new facts can be added.

    Attributes:
      name: snake_case registry name, e.g. "densenet121".
      module_name: the Python module that defines the builder, e.g. "keras_nets.densenet".
      builder: the builder function's name in that module, e.g. "DenseNet121".
      default_size: input height and width of the published weights.
      min_size: smallest height and width the network accepts.
      preprocessing: `imagenet_utils` mode, "tf", "caffe" or "torch"; "none" if built in.
      published_weights: whether published ImageNet weights exist.
      unfreeze_prefixes: block prefixes `finetune.unfreeze_top` accepts, the first documented:
        each names the first layer of a block, so that block and all after it train.
      function: the builder function itself (also for builders no module attribute names).
    """

    name: str
    module_name: str
    builder: str
    default_size: int
    min_size: int
    preprocessing: str
    published_weights: bool = True
    unfreeze_prefixes: tuple = ()
    function: object = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def module(self):
        return importlib.import_module(self.module_name)

    def build(self, **kwargs):
        """Builds the model: `create_model(name, **kwargs)` for this config."""
        return (self.function or getattr(self.module, self.builder))(**kwargs)

    def preprocess_input(self, x, **kwargs):
        """The model's `preprocess_input`: its pixels (0-255 RGB) as the network expects them."""
        if self.preprocessing == "none":
            return x
        from keras_nets import imagenet  # imports Keras: not at `import keras_nets` time

        return imagenet.preprocess_input(x, mode=self.preprocessing, **kwargs)


_MODELS = {}
_collected = False


def register_model(
    name,
    *,
    default_size,
    min_size,
    preprocessing,
    published_weights=True,
    unfreeze_prefixes=(),
):
    """Decorator that registers a builder under `name`; stack several for several entries.

    Used by every model module on its builders, and usable from outside the package:

        @keras_nets.register_model("tiny_net", default_size=32, min_size=32, preprocessing="tf",
                                   published_weights=False)
        def TinyNet(include_top=True, weights=None, input_shape=None, classes=1000, **kwargs): ...

    Args:
      name: the registry name; a ValueError if it is taken.
      default_size, min_size, preprocessing, published_weights, unfreeze_prefixes: the
        `ModelConfig` fields.

    Returns:
      The decorator, which returns the builder unchanged.
    """

    def register(builder):
        config = ModelConfig(
            name,
            builder.__module__,
            builder.__name__,
            default_size,
            min_size,
            preprocessing,
            published_weights,
            tuple(unfreeze_prefixes),
            builder,
        )
        if name in _MODELS and _MODELS[name] != config:
            raise ValueError(f"model={name!r} is registered already, by {_MODELS[name].builder}")
        _MODELS[name] = config
        return builder

    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing={preprocessing!r}: expected one of {PREPROCESSING}")
    return register


def unregister_model(name):
    """Removes `name` from the registry (for models registered from outside, e.g. in tests)."""
    _MODELS.pop(name, None)


def models():
    """Every registered `ModelConfig` by name: the package's own in table order, then the rest."""
    global _collected
    if not _collected:
        _collected = True
        for module in MODEL_MODULES:
            importlib.import_module(f"keras_nets.{module}")
    modules = [f"keras_nets.{module}" for module in MODEL_MODULES]
    order = {name: i for i, name in enumerate(_MODELS)}

    def table_order(config):
        own = config.module_name in modules
        return (modules.index(config.module_name) if own else len(modules), order[config.name])

    return {config.name: config for config in sorted(_MODELS.values(), key=table_order)}


def model_names():
    """The registry names, in table order, without importing Keras when nothing was collected yet:
    the package's own are read from the `@register_model` lines of its model modules' source."""
    if _collected:
        return list(models())
    return [*_declared_names(), *(name for name in _MODELS if name not in _declared_names())]


@functools.cache
def _declared_names():
    names = []
    for module in MODEL_MODULES:
        source = importlib.util.find_spec(f"keras_nets.{module}").origin
        with open(source, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        names += [
            decorator.args[0].value
            for function in tree.body
            if isinstance(function, ast.FunctionDef)
            for decorator in function.decorator_list
            if isinstance(decorator, ast.Call)
            and getattr(decorator.func, "id", None) == "register_model"
        ]
    return tuple(names)


class _Models(collections.abc.Mapping):
    """`MODELS`: {name: ModelConfig}; names and membership without importing Keras, a config
    collects the registry on first use."""

    def __getitem__(self, name):
        return models()[name]

    def __iter__(self):
        return iter(model_names())

    def __len__(self):
        return len(model_names())

    def __contains__(self, name):
        return name in model_names()


MODELS = _Models()


def list_models():
    """The registry names of every model, in the order of the model table in README.md."""
    return list(models())


def get_config(name):
    """The `ModelConfig` registered under `name`; a ValueError lists the valid names otherwise."""
    try:
        return models()[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"model={name!r} is not a keras_nets model; expected one of: {', '.join(models())}"
        ) from None


def create_model(name, **kwargs):
    """Builds the model registered under `name`, e.g. `create_model("xception", weights=None)`.

    Keyword arguments go to the builder unchanged (`include_top`, `weights`, `input_shape`, ...).
    """
    return get_config(name).build(**kwargs)
