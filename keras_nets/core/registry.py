"""The model registry: one small config per model, in the spirit of timm and kimm.

Each model module declares its own entries with `@register_model(...)` on its builder, next to the
network; this module only stores and lists them. A config says what a model is, not how to build
it: its builder, the input size it was trained at, the smallest input it accepts, how its inputs
are preprocessed, whether published ImageNet weights exist and where fine-tuning may start.
Builders, the CLI and the benchmarks all read these configs, so the facts live once, beside the
network.

Collecting the package's own models (importing their modules, and so Keras), listing them all and
building them is `keras_nets.core.factory`'s job, above the model modules: this module imports
nothing of keras_nets but `imagenet`, lazily, and `import keras_nets` stays cheap.
"""

import ast
import dataclasses
import functools
import importlib
import importlib.util

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
    "resnet",
    "resnet_v2",
    "mobilenet_v2",
    "vgg",
    "mobilenet",
    "mobilenet_v3",
    "densenet",
    "inception_resnet_v2",
    "efficientnet",
    "efficientnet_v2",
    "nasnet",
    "convnext",
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

    def build(self, **kwargs):
        """Calls the builder with `kwargs`: the network as its module defines it. Preprocessing
        layers in front and feature maps are `keras_nets.create_model`'s (core/factory)."""
        return (self.function or getattr(self.module, self.builder))(**kwargs)

    def preprocess_input(self, x, **kwargs):
        """The model's `preprocess_input`: its pixels (0-255 RGB) as the network expects them."""
        if self.preprocessing == "none":
            return x
        from keras_nets.core import imagenet  # imports Keras: not at `import keras_nets` time

        return imagenet.preprocess_input(x, mode=self.preprocessing, **kwargs)


_MODELS = {}


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


def model_names():
    """The registry names, in table order, without importing Keras: the package's own are read
    from the `@register_model` lines of its model modules' source, then those registered from
    outside the package."""
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
        shared = _shared_entries(tree)
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
                facts.update(_literal_keywords(decorator.keywords, shared))
                found[decorator.args[0].value] = facts
    return found


def _shared_entries(tree):
    """{NAME: {argument: literal value}} of a module's `NAME = dict(argument=..., ...)`
    assignments, which a family's `@register_model(name, **NAME)` lines share (densenet)."""
    shared = {}
    for node in tree.body:
        call = node.value if isinstance(node, ast.Assign) else None
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "dict"):
            continue
        entries = _literal_keywords(call.keywords, {})
        for target in node.targets:
            if isinstance(target, ast.Name):
                shared[target.id] = entries
    return shared


def _literal_keywords(keywords, shared):
    """{argument: literal value} of a call's keywords; `**NAME` takes the literal entries of
    `shared[NAME]` (a module-level dict(...) shared by a family)."""
    found = {}
    for keyword in keywords:
        if keyword.arg is None:  # **NAME
            found.update(shared.get(getattr(keyword.value, "id", None), {}))
            continue
        try:
            found[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:  # not a literal (a dict(...) call): not needed statically
            pass
    return found


def registered():
    """{name: ModelConfig} of the models registered so far, in registration order; collecting
    the package's own (importing their modules) is `keras_nets.core.factory.models`' job."""
    return dict(_MODELS)


def registered_config(name):
    """The `ModelConfig` of `name`, registered already (a builder asks for its own); a
    ValueError otherwise."""
    try:
        return _MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"model={name!r} is not a registered keras_nets model") from None
