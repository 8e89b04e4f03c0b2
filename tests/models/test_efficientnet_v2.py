"""EfficientNetV2-B0 ... B3, S, M and L load the published keras.applications weights layout
exactly, and scale their input as keras.applications does."""

import keras
import numpy as np
import pytest
from published_layout import (
    assert_loads_published_layout,
    assert_loads_published_top_and_notop,
    weighted_layers,
)

from keras_nets import efficientnet_v2
from keras_nets.efficientnet_v2 import preprocess_input

# M and L alone take about a minute to build (theirs and ours), two minutes under load on 2 cores.
pytestmark = pytest.mark.slow_file

VARIANTS = ["B0", "B1", "B2", "B3", "S", "M", "L"]
# keras.applications' parameter counts with the top, written out: building its references with
# the top too would double this file's time for numbers that do not change (Keras' docs round
# them: 7.2M, 8.2M, 10.2M, 14.5M, 21.6M, 54.4M, 119.0M).
PUBLISHED_PARAMETERS = dict(
    B0=7_200_312,
    B1=8_212_124,
    B2=10_178_374,
    B3=14_467_622,
    S=21_612_360,
    M=54_431_388,
    L=119_027_848,
)
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def ours(variant):
    return getattr(efficientnet_v2, f"EfficientNetV2{variant}")


def reference(variant):
    return getattr(keras.applications, f"EfficientNetV2{variant}")


def raw_images(shape, seed=0):
    """0-255 pixels: the models scale their own input."""
    return np.random.default_rng(seed).uniform(0.0, 255.0, shape).astype("float32")


def scaling_layers(model):
    """The kinds of the layers between the input and the stem convolution."""
    stem = [layer.name for layer in model.layers].index("stem_conv")
    return [type(layer).__name__ for layer in model.layers[1:stem]]


def below_the_stem(model):
    """What the model's own preprocessing makes of its input: the stem convolution's input."""
    return keras.Model(model.input, model.get_layer("stem_conv").input)


# B0 and L, the smallest and the largest, load the layout top and notop, outputs compared before
# the softmax; their weighted layers are compared there too. B0's notop size is odd, where 'same'
# padding at stride 2 is uneven.
@pytest.mark.parametrize(
    "kwargs",
    [dict(include_top=True), dict(include_top=False, pooling="avg", input_shape=(65, 65, 3))],
    ids=["top", "notop"],
)
def test_b0_loads_keras_applications_weights_layout(tmp_path, kwargs):
    kwargs = dict(classifier_activation=None, **kwargs)  # logits: before the softmax
    twin = keras.applications.EfficientNetV2B0(weights=None, **kwargs)
    size = twin.input_shape[1]
    model = assert_loads_published_layout(
        twin, ours("B0"), tmp_path, raw_images((2, size, size, 3)), **kwargs
    )
    assert weighted_layers(model) == weighted_layers(twin)
    if kwargs["include_top"]:
        assert model.count_params() == PUBLISHED_PARAMETERS["B0"]


def test_l_loads_keras_applications_weights_layout_top_and_notop(tmp_path):
    """At 32x32 (the layout is the same at any size), both files from one reference (an L build
    takes 20-40 s here). With randomize_weights its largest logit is about 1.7 at 32x32
    (measured), and the comparison is relative to the largest output
    (published_layout.assert_same_outputs) whatever the scale."""
    kwargs = dict(input_shape=(32, 32, 3), classifier_activation=None)
    twin = keras.applications.EfficientNetV2L(weights=None, **kwargs)
    images = raw_images((2, 32, 32, 3))
    top, _ = assert_loads_published_top_and_notop(
        twin, ours("L"), tmp_path, images, "top_activation", **kwargs
    )
    assert top.count_params() == PUBLISHED_PARAMETERS["L"]


@pytest.mark.parametrize("variant", ["B1", "B2", "B3", "S", "M"])  # B0 and L: above
def test_weighted_layers_and_parameters_are_keras_applications(variant):
    """The layer names, weight shapes and order a published .h5 file loads into, the parameter
    count with the top (ours with it, Keras' without: one build each), and the input scaling's
    layers (S and M: to [-1, 1], one Rescaling)."""
    model = ours(variant)(weights=None, input_shape=(32, 32, 3))
    twin = reference(variant)(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert scaling_layers(model) == scaling_layers(twin)
    *layout, top = weighted_layers(model)
    assert layout == weighted_layers(twin)
    assert top == ("predictions", [(twin.output_shape[-1], 1000), (1000,)])
    assert model.count_params() == PUBLISHED_PARAMETERS[variant]


def test_b0_to_b3_normalise_rgb_with_imagenet_mean_and_std():
    model = ours("B0")(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert scaling_layers(model) == ["Rescaling", "Normalization"]
    assert not model.layers[2].weights  # constants: the published files hold none
    images = raw_images((2, 32, 32, 3))
    pixels = below_the_stem(model)(images)
    np.testing.assert_allclose(pixels, (images / 255 - MEAN) / STD, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 4], ids=["gray", "rgba"])
def test_otherwise_the_input_is_scaled_to_minus_one_one_as_keras_does(channels):
    """Keras normalises with ImageNet's statistics only a B variant's 3-channel input; S, M and L
    take the same Rescaling (their layers: test_weighted_layers_and_parameters_...)."""
    kwargs = dict(weights=None, include_top=False, input_shape=(32, 32, channels))
    model = ours("B0")(**kwargs)
    twin = keras.applications.EfficientNetV2B0(**kwargs)
    assert scaling_layers(model) == scaling_layers(twin) == ["Rescaling"]
    images = raw_images((2, 32, 32, channels))
    np.testing.assert_allclose(
        below_the_stem(model)(images), images / 128 - 1, rtol=1e-6, atol=1e-6
    )


def test_without_preprocessing_the_stem_takes_the_input():
    model = ours("B0")(
        weights=None, include_top=False, input_shape=(32, 32, 3), include_preprocessing=False
    )
    assert model.layers[1].name == "stem_conv"


def test_stage_shapes_at_the_default_size():
    model = ours("B0")(weights=None, include_top=False, input_shape=(224, 224, 3))
    shapes = {
        name: model.get_layer(name).output.shape[1:]
        for name in [
            "stem_activation",
            "block1a_project_activation",
            "block2b_add",
            "block3b_add",
            "block4c_add",
            "block5e_add",
            "block6h_add",
            "top_activation",
        ]
    }
    assert list(shapes.values()) == [
        (112, 112, 32),
        (112, 112, 16),
        (56, 56, 32),
        (28, 28, 48),
        (14, 14, 96),
        (14, 14, 112),
        (7, 7, 192),
        (7, 7, 1280),
    ]


def test_preprocess_input_is_a_pass_through():
    x = np.full((1, 2, 2, 3), 200.0, dtype="float32")
    assert preprocess_input(x) is x
