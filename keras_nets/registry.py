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
import fnmatch
import functools
import importlib
import importlib.util
import inspect

PREPROCESSING = ("tf", "caffe", "torch", "none")  # imagenet.preprocess_input modes, or built in
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")  # PIL's resampling filters
# The evaluation pipeline of Keras' published accuracies (keras-applications' README table,
# which keras.io repeats): shorter side resized to 256, central 224x224 crop (7/8), bicubic
# (cv2.INTER_CUBIC), as the table's author, taehoonlee, describes it in keras-team/
# keras-applications#88 and #99. Also the default where nothing is documented (timm's too).
DEFAULT_CROP_PCT = 0.875
DEFAULT_INTERPOLATION = "bicubic"
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
      feature_layers: {level: layer name}, e.g. {"P1": "block1_conv2_act", ...}: the layer of
        the model without its top that gives each pyramid level (stride 2**k for "Pk"), the last
        block output at that stride, after its activation (see keras_nets.features).
      crop_pct, interpolation: the evaluation pipeline of the published accuracy (see
        `keras_nets.preprocessing.eval_transform`): the shorter side is resized to
        round(size / crop_pct) with `interpolation` ("bicubic", "bilinear", ...), then the
        central size x size square is cropped.
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
    feature_layers: dict = dataclasses.field(default_factory=dict)
    crop_pct: float = DEFAULT_CROP_PCT
    interpolation: str = DEFAULT_INTERPOLATION

    @property
    def module(self):
        return importlib.import_module(self.module_name)

    def build(self, include_preprocessing=None, **kwargs):
        """Builds the model: `create_model(name, **kwargs)` for this config.

        `include_preprocessing=True`: the model takes raw 0-255 RGB and applies its own
        `preprocess_input` in the graph (see `keras_nets.preprocessing.with_preprocessing`); a
        builder with an `include_preprocessing` argument of its own (MobileNetV3) gets it.
        """
        builder = self.function or getattr(self.module, self.builder)
        if "include_preprocessing" in inspect.signature(builder).parameters:
            if include_preprocessing is not None:
                kwargs["include_preprocessing"] = include_preprocessing
            return builder(**kwargs)
        if include_preprocessing:
            from keras_nets import preprocessing  # imports Keras: not at `import keras_nets` time

            return preprocessing.with_preprocessing(self, builder, kwargs)
        return builder(**kwargs)

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
    feature_layers=None,
    crop_pct=DEFAULT_CROP_PCT,
    interpolation=DEFAULT_INTERPOLATION,
):
    """Decorator that registers a builder under `name`; stack several for several entries.

    Used by every model module on its builders, and usable from outside the package:

        @keras_nets.register_model("tiny_net", default_size=32, min_size=32, preprocessing="tf",
                                   published_weights=False)
        def TinyNet(include_top=True, weights=None, input_shape=None, classes=1000, **kwargs): ...

    Args:
      name: the registry name; a ValueError if it is taken.
      default_size, min_size, preprocessing, published_weights, unfreeze_prefixes,
        feature_layers, crop_pct, interpolation: the `ModelConfig` fields.

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
            feature_layers=dict(feature_layers or {}),
            crop_pct=float(crop_pct),
            interpolation=interpolation,
        )
        if name in _MODELS and _MODELS[name] != config:
            raise ValueError(f"model={name!r} is registered already, by {_MODELS[name].builder}")
        _MODELS[name] = config
        return builder

    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing={preprocessing!r}: expected one of {PREPROCESSING}")
    if not (isinstance(crop_pct, (int, float)) and 0 < crop_pct <= 1):
        raise ValueError(f"crop_pct={crop_pct!r}: expected a fraction in (0, 1]")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation={interpolation!r}: expected one of {INTERPOLATIONS}")
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
    return [*_declared(), *(name for name in _MODELS if name not in _declared())]


def declared(name):
    """What the package's own model `name` declares, read from its module's source without
    importing Keras: the literal `@register_model` arguments ("default_size", "min_size",
    "published_weights", ...) and "parameters", the builder's argument names; None for a model
    registered from outside the package."""
    return _declared().get(name)


@functools.cache
def _declared():
    found = {}
    for module in MODEL_MODULES:
        source = importlib.util.find_spec(f"keras_nets.{module}").origin
        with open(source, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for function in tree.body:
            if not isinstance(function, ast.FunctionDef):
                continue
            arguments = [a.arg for a in function.args.args + function.args.kwonlyargs]
            for decorator in function.decorator_list:
                if not (
                    isinstance(decorator, ast.Call)
                    and getattr(decorator.func, "id", None) == "register_model"
                ):
                    continue
                facts = {"published_weights": True, "parameters": tuple(arguments)}
                for keyword in decorator.keywords:
                    try:
                        facts[keyword.arg] = ast.literal_eval(keyword.value)
                    except ValueError:  # not a literal (a dict(...) call): not needed statically
                        pass
                found[decorator.args[0].value] = facts
    return found


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


def list_models(filter="", *, pretrained=None, features_only=False):
    """The registry names of the models, in the order of the model table in README.md, as timm's
    `list_models`.

        list_models()                              # every model
        list_models("mobilenet*")                  # fnmatch patterns, case-insensitive
        list_models(["vgg*", "resnet*"], pretrained=True)

    Args:
      filter: an fnmatch pattern, or a list of them (a name matching any is listed); "" for all.
      pretrained: True: only the models with published ImageNet weights; False: only those
        without; None: both.
      features_only: list only the models that declare feature levels, i.e. that
        `create_model(name, features_only=True)` builds (all of the package's own).
    """
    patterns = [filter] if isinstance(filter, str) else filter
    if not isinstance(patterns, (list, tuple)) or not all(isinstance(p, str) for p in patterns):
        raise TypeError(
            f"filter={filter!r}: expected an fnmatch pattern (a string) or a list of them"
        )
    if pretrained not in (None, True, False):
        raise TypeError(f"pretrained={pretrained!r}: expected None, True or False")
    patterns = [p for p in patterns if p]
    return [
        name
        for name, config in models().items()
        if (not patterns or any(fnmatch.fnmatch(name.lower(), p.lower()) for p in patterns))
        and (pretrained is None or config.published_weights == pretrained)
        and (config.feature_layers or not features_only)
    ]


def get_config(name):
    """The `ModelConfig` registered under `name`; a ValueError lists the valid names otherwise."""
    try:
        return models()[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"model={name!r} is not a keras_nets model; expected one of: {', '.join(models())}"
        ) from None


def create_model(name, features_only=False, out_levels=None, **kwargs):
    """Builds the model registered under `name`, e.g. `create_model("xception", weights=None)`.

    Keyword arguments go to the builder unchanged (`include_top`, `weights`, `input_shape`, ...).

    Args:
      name: the registry name.
      features_only: build the feature extractor instead: a model whose output is a dict of
        feature maps keyed by pyramid level, "P1" ... "P5" (see `keras_nets.features`).
      out_levels: with `features_only=True`, the levels to output, e.g. ("P3", "P4", "P5");
        None for every level the network has.
    """
    if out_levels is not None and not features_only:
        raise ValueError(f"out_levels={out_levels!r}: expected None unless features_only=True")
    if features_only:
        from keras_nets import features  # imports Keras: not at `import keras_nets` time

        return features.create_features_model(name, out_levels=out_levels, **kwargs)
    return get_config(name).build(**kwargs)
