"""Building registry models: the package's own collected, listed, built, with preprocessing or
as feature extractors.

Above the model modules (it imports them all on first use), below the tasks: `create_model`,
`get_config`, `list_models` and `models` collect the registry's entries (see
`keras_nets.core.registry`, which only stores them), `build` calls a config's builder and adds
what the builder itself does not: `preprocess_input` as layers in front
(`include_preprocessing=True`) or, through `keras_nets.core.features`, the feature maps
(`features_only=True`). Keras is imported on the first call, not at `import keras_nets` time.
"""

import collections.abc
import fnmatch
import importlib
import inspect

from keras_nets.core import registry

_collected = False
LEVELS = ("P1", "P2", "P3", "P4", "P5")  # feature pyramid levels, stride 2**k for "Pk"


def models():
    """Every registered `ModelConfig` by name: the package's own in table order, then the rest."""
    global _collected
    if not _collected:
        _collected = True
        for module in registry.MODEL_MODULES:
            importlib.import_module(f"keras_nets.{module}")
    modules = [f"keras_nets.{module}" for module in registry.MODEL_MODULES]
    stored = registry.registered()
    order = {name: i for i, name in enumerate(stored)}

    def table_order(config):
        own = config.module_name in modules
        return (modules.index(config.module_name) if own else len(modules), order[config.name])

    return {config.name: config for config in sorted(stored.values(), key=table_order)}


class _Models(collections.abc.Mapping):
    """`MODELS`: {name: ModelConfig}; names and membership without importing Keras, a config
    collects the registry on first use."""

    def __getitem__(self, name):
        return models()[name]

    def __iter__(self):
        return iter(registry.model_names())

    def __len__(self):
        return len(registry.model_names())

    def __contains__(self, name):
        return name in registry.model_names()


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
        return create_features_model(name, out_levels=out_levels, **kwargs)
    return build(get_config(name), **kwargs)


def build(config, include_preprocessing=None, **kwargs):
    """Builds the model of `config` (a `ModelConfig`): `create_model(config.name, **kwargs)`.

    `include_preprocessing=True`: the model takes raw 0-255 RGB and applies its own
    `preprocess_input` in the graph (see `with_preprocessing`); a builder with an
    `include_preprocessing` argument of its own (MobileNetV3) gets it.
    """
    builder = config.function or getattr(config.module, config.builder)
    if "include_preprocessing" in inspect.signature(builder).parameters:
        if include_preprocessing is not None:
            kwargs["include_preprocessing"] = include_preprocessing
        return builder(**kwargs)
    if include_preprocessing:
        return with_preprocessing(config, builder, kwargs)
    return builder(**kwargs)


def with_preprocessing(config, builder, kwargs):
    """`builder(**kwargs)` with the config's `preprocess_input` in the graph, in front.

    The model's input is raw 0-255 RGB (named "image"), then a layer "preprocess" does what
    `preprocess_input` does, then the network: one flat Functional model. Weights still load
    (the builder loads them into the network from its own input on).
    """
    import keras

    from keras_nets.images.layers import preprocessing_layers

    raw = kwargs.pop("input_tensor", None)
    if raw is None:
        shape = kwargs.get("input_shape")
        if shape is None:
            size = config.default_size if kwargs.get("include_top", True) else None
            shape = (size, size, 3)
        try:
            raw = keras.Input(shape=tuple(shape), name="image")
        except (TypeError, ValueError):
            return builder(**kwargs)  # the builder's own check names what is wrong
    return builder(input_tensor=preprocessing_layers(config.preprocessing)(raw), **kwargs)


def create_features_model(name, out_levels=None, **kwargs):
    """The feature extractor of `name`: its model without top, outputting {level: feature map}.

    Called by `keras_nets.create_model(name, features_only=True, ...)`.

    Args:
      name: the registry name.
      out_levels: the levels to output, e.g. ("P3", "P4", "P5"), in any order; None for every
        level the network has. An unknown level is a ValueError listing the valid ones.
      **kwargs: the builder's arguments (`weights`, `input_shape`, `alpha`, ...): `weights`
        "imagenet" loads the published file without top; `include_top` and `pooling` must be
        left out (or False / None).
    """
    config = get_config(name)
    if not config.feature_layers:
        raise ValueError(
            f"model={name!r} declares no feature levels; expected one of: "
            f"{', '.join(list_models(features_only=True))}"
        )
    if kwargs.get("include_top"):
        raise ValueError(
            f"include_top={kwargs['include_top']!r}: features_only=True builds the model "
            "without its top; leave include_top out"
        )
    if kwargs.get("pooling") is not None:
        raise ValueError(
            f"pooling={kwargs['pooling']!r}: features_only=True outputs the feature maps "
            "unpooled; leave pooling out"
        )
    levels = _check_levels(config, out_levels)
    kwargs.update(include_top=False, pooling=None)
    base = build(config, **kwargs)
    outputs = {level: base.get_layer(config.feature_layers[level]).output for level in levels}
    import keras  # imports Keras: not at `import keras_nets` time

    return keras.Model(base.input, outputs, name=f"{base.name}_features")


def _check_levels(config, out_levels):
    valid = tuple(config.feature_layers)
    if out_levels is None:
        return valid
    requested = (out_levels,) if isinstance(out_levels, str) else out_levels
    try:
        requested = tuple(requested)
    except TypeError:
        requested = None
    if (
        not requested
        or any(level not in valid for level in requested)
        or (len(set(requested)) != len(requested))
    ):
        raise ValueError(
            f"out_levels={out_levels!r}: expected None or distinct levels among "
            f"{', '.join(valid)} ({config.name} has these)"
        )
    return tuple(level for level in valid if level in requested)  # pyramid order
