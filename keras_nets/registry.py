"""The model registry: one small config per model, in the spirit of timm and kimm.

A config says what a model is, not how to build it: where its builder lives, the input size it was
trained at, the smallest input it accepts, how its inputs are preprocessed and whether published
ImageNet weights exist. Builders, the CLI and the benchmarks all read these configs, so the facts
live here once.
"""

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str                 # snake_case registry name
    family: str               # the module under keras_nets that builds it, e.g. "densenet"
    builder: str              # the builder function's name in that module
    default_size: int         # input height and width of the published weights
    min_size: int             # smallest height and width the network accepts
    preprocessing: str        # imagenet_utils mode: "tf", "caffe" or "torch"; "none" if built in
    published_weights: bool = True

    @property
    def module(self):
        return importlib.import_module(f"keras_nets.{self.family}")

    def build(self, **kwargs):
        """Builds the model: `create_model(name, **kwargs)` for this config."""
        return getattr(self.module, self.builder)(**kwargs)

    def preprocess_input(self, x, **kwargs):
        return self.module.preprocess_input(x, **kwargs)


_CONFIGS = (
    ModelConfig("xception", "xception", "Xception", 299, 71, "tf"),
    ModelConfig("inception_v3", "inception_v3", "InceptionV3", 299, 75, "tf"),
    ModelConfig("resnet50", "resnet50", "ResNet50", 224, 32, "caffe"),
    ModelConfig("mobilenet_v2", "mobilenet_v2", "MobileNetV2", 224, 32, "tf"),
    ModelConfig("vgg16", "vgg16", "VGG16", 224, 32, "caffe"),
    ModelConfig("vgg19", "vgg19", "VGG19", 224, 32, "caffe"),
    ModelConfig("mobilenet", "mobilenet", "MobileNet", 224, 32, "tf"),
    ModelConfig("mobilenet_v3_small", "mobilenet_v3", "MobileNetV3Small", 224, 32, "none"),
    ModelConfig("mobilenet_v3_large", "mobilenet_v3", "MobileNetV3Large", 224, 32, "none"),
    ModelConfig("densenet121", "densenet", "DenseNet121", 224, 32, "torch"),
    ModelConfig("densenet169", "densenet", "DenseNet169", 224, 32, "torch"),
    ModelConfig("densenet201", "densenet", "DenseNet201", 224, 32, "torch"),
    ModelConfig("inception_resnet_v2", "inception_resnet_v2", "InceptionResNetV2", 299, 75, "tf"),
    ModelConfig("shufflenet_v2", "shufflenet_v2", "ShuffleNetV2", 224, 32, "torch", published_weights=False),
    ModelConfig("alexnet", "alexnet", "AlexNet", 227, 67, "caffe", published_weights=False),
)

MODELS = {config.name: config for config in _CONFIGS}


def list_models():
    """The registry names of every model, in the order of the model table in README.md."""
    return list(MODELS)


def get_config(name):
    """The `ModelConfig` registered under `name`; a ValueError lists the valid names otherwise."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"model={name!r} is not a keras_nets model; expected one of: {', '.join(MODELS)}"
        ) from None


def create_model(name, **kwargs):
    """Builds the model registered under `name`, e.g. `create_model("xception", weights=None)`.

    Keyword arguments go to the builder unchanged (`include_top`, `weights`, `input_shape`, ...).
    """
    return get_config(name).build(**kwargs)
