"""ConvNeXt-Tiny ... XLarge load the published keras.applications weights layout exactly, and a
saved ConvNeXt (which holds keras-nets' LayerScale) loads after a bare `import keras_nets`.

The smallest (Tiny) and the largest (XLarge) are proved with and without their top at 64x64 (the
classifier sits on a global average pool, so the same weights fit any input size). Small, Base
and Large are the same builder with another row of VARIANTS: their parameter counts are
keras.applications' and their weighted layers are checked, in order.
"""

import subprocess
import sys

import keras
import numpy as np
import pytest
from published_layout import assert_loads_published_layout, weighted_layers

from keras_nets import (
    ConvNeXtBase,
    ConvNeXtLarge,
    ConvNeXtSmall,
    ConvNeXtTiny,
    ConvNeXtXLarge,
    convnext,
    get_config,
)

# About 3 minutes on 2 shared cores (XLarge's 350 million parameters written to a legacy .h5 and
# read back twice, two fresh interpreters): parallel runs start it first.
pytestmark = pytest.mark.slow_file

# Builder, keras.applications' builder, parameters with the top (keras.applications' count).
CONVNEXTS = {
    "convnext_tiny": (ConvNeXtTiny, keras.applications.ConvNeXtTiny, 28_589_128),
    "convnext_small": (ConvNeXtSmall, keras.applications.ConvNeXtSmall, 50_223_688),
    "convnext_base": (ConvNeXtBase, keras.applications.ConvNeXtBase, 88_591_464),
    "convnext_large": (ConvNeXtLarge, keras.applications.ConvNeXtLarge, 197_767_336),
    "convnext_xlarge": (ConvNeXtXLarge, keras.applications.ConvNeXtXLarge, 350_196_968),
}
SMALL = (32, 32, 3)  # the smallest input they take: building is what costs, not the size


def raw_images(shape, seed=0):
    """0-255 pixels: the models normalise their own input."""
    return np.random.default_rng(seed).uniform(0.0, 255.0, shape).astype("float32")


@pytest.mark.parametrize(
    "model, include_top",
    [
        ("convnext_tiny", True),
        ("convnext_tiny", False),
        ("convnext_xlarge", True),
        ("convnext_xlarge", False),
    ],
)
def test_loads_keras_applications_weights_layout(tmp_path, model, include_top):
    ours, reference, _ = CONVNEXTS[model]
    kwargs = dict(include_top=include_top, input_shape=(64, 64, 3), classifier_activation=None)
    reference = reference(weights=None, **kwargs)
    assert_loads_published_layout(reference, ours, tmp_path, raw_images((2, 64, 64, 3)), **kwargs)


@pytest.mark.parametrize("model", CONVNEXTS)
def test_weighted_layers_and_parameters_are_keras_applications(model):
    """With the top, at the smallest input: the same weighted layers in the same order (what a
    legacy .h5 file loads by), and keras.applications' parameter count, written down."""
    ours, reference, published_parameters = CONVNEXTS[model]
    built = ours(weights=None, input_shape=SMALL)
    assert weighted_layers(built) == weighted_layers(reference(weights=None, input_shape=SMALL))
    assert built.count_params() == published_parameters


def test_stage_shapes():
    """Strides 4, 8, 16, 32 at the stages' widths, at 224x224 (Tiny): each feature level."""
    model = ConvNeXtTiny(weights=None, include_top=False, input_shape=(224, 224, 3))
    levels = {
        level: tuple(model.get_layer(layer).output.shape[1:])
        for level, layer in get_config("convnext_tiny").feature_layers.items()
    }
    assert levels == {
        "P2": (56, 56, 96),
        "P3": (28, 28, 192),
        "P4": (14, 14, 384),
        "P5": (7, 7, 768),
    }
    assert tuple(model.output.shape[1:]) == (7, 7, 768)  # layer-normalised, as Keras' notop


def test_the_input_is_normalised_in_the_graph_for_three_channels_only():
    three = ConvNeXtTiny(weights=None, include_top=False, input_shape=SMALL)
    normalization = three.get_layer("convnext_tiny_prestem_normalization")
    images = raw_images((1, 32, 32, 3))
    mean = np.array([0.485, 0.456, 0.406]) * 255
    std = np.array([0.229, 0.224, 0.225]) * 255
    np.testing.assert_allclose(
        keras.Model(three.input, normalization.output)(images),
        (images - mean) / std,
        rtol=1e-5,
        atol=1e-5,
    )
    one = ConvNeXtTiny(weights=None, include_top=False, input_shape=(32, 32, 1))
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in one.layers)
    off = ConvNeXtTiny(
        weights=None, include_top=False, include_preprocessing=False, input_shape=SMALL
    )
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in off.layers)


def test_preprocess_input_is_a_pass_through():
    x = np.full((1, 2, 2, 3), 200.0, dtype="float32")
    assert convnext.preprocess_input(x) is x


@pytest.fixture(scope="module")
def saved_convnext(tmp_path_factory):
    """A saved ConvNeXt-Tiny (random weights, 32x32, without top) and its outputs."""
    model = ConvNeXtTiny(weights=None, include_top=False, pooling="avg", input_shape=SMALL)
    path = tmp_path_factory.mktemp("saved") / "convnext_tiny.keras"
    model.save(path)
    images = raw_images((2, *SMALL))
    np.save(path.with_suffix(".npy"), images)
    return path, keras.ops.convert_to_numpy(model(images, training=False))


@pytest.mark.parametrize(
    "imports",
    ["import keras_nets\nimport keras", "import keras\nimport keras_nets"],
    ids=["keras_nets-first", "keras-first"],
)
def test_a_saved_convnext_loads_after_a_bare_import_keras_nets(saved_convnext, tmp_path, imports):
    """In a fresh interpreter, whichever is imported first: `import keras_nets` registers
    LayerScale with Keras (without importing Keras itself), so `load_model` finds it."""
    path, expected = saved_convnext
    script = (
        f"import sys\n{imports}\n"
        "import numpy as np\n"
        f"model = keras.saving.load_model({str(path)!r})\n"
        f"images = np.load({str(path.with_suffix('.npy'))!r})\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, keras.ops.convert_to_numpy(model(images)))\n"
        "print(type(model.get_layer('convnext_tiny_stage_0_block_0_layer_scale')).__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "keras_nets.core.layers"
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-5)
