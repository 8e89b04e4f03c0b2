"""Grad-CAM (`keras_nets.explain`): right against a closed form, right where the evidence is."""

import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from generated_data import SMALL_KWARGS, SMALL_MODEL, SMALL_SIZE
from informative_weights import informative_classifier
from keras import layers, ops
from model_sample import family_sample

import keras_nets
from keras_nets import explain, finetune

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too


def pooled_dense_model(seed=0):
    """16x16x3 -> conv (stride 2, ReLU) "features" 8x8x5 -> global average -> Dense softmax."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(5, 3, strides=2, padding="same", activation="relu", name="features")(inputs)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(4, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def closed_form(activations, class_weights, size):
    """Grad-CAM of a global-average + Dense head: ReLU(sum_k w_kc A_k / (H W)), upsampled, /max.

    The gradient of the logit y_c = sum_k w_kc mean_ij A_kij with respect to A_kij is w_kc / (H W)
    at every position, so the channel weights need no gradient at all.
    """
    height, width = activations.shape[1:3]
    cams = np.maximum(np.einsum("nhwk,nk->nhw", activations, class_weights) / (height * width), 0)
    cams = ops.convert_to_numpy(ops.image.resize(cams[..., None], size, interpolation="bilinear"))[
        ..., 0
    ]
    return cams / cams.max(axis=(1, 2), keepdims=True)


def test_grad_cam_of_a_pooled_dense_head_is_its_closed_form():
    model = pooled_dense_model()
    images = np.random.default_rng(0).normal(size=(3, 16, 16, 3)).astype("float32")
    classes = [0, 3, 1]
    activations = ops.convert_to_numpy(
        keras.Model(model.input, model.get_layer("features").output)(images)
    )
    kernel = model.get_layer("predictions").get_weights()[0]  # (channels, classes)
    expected = closed_form(activations, kernel[:, classes].T, (16, 16))

    heatmaps = explain.grad_cam(model, images, class_index=classes)

    assert heatmaps.shape == (3, 16, 16) and heatmaps.dtype == np.float32
    np.testing.assert_allclose(heatmaps, expected, atol=1e-5)


def flattened_dense_model(softmax_layer, seed=0):
    """6x6x3 -> conv (ReLU) "features" 6x6x4 -> Flatten -> Dense: a head whose gradient differs
    at every position (unlike global average pooling's). `softmax_layer`: the Dense gives logits
    and a separate Activation("softmax") follows, as in MobileNet and MobileNetV3's tops."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    x = layers.Flatten()(x)
    x = layers.Dense(5, name="logits")(x)
    if softmax_layer:
        x = layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, x)


def test_grad_cam_of_a_flattened_dense_head_is_its_closed_form():
    """alpha_k = mean_ij dy_c/dA_kij (here the Dense kernel's column, reshaped to the map), then
    ReLU(sum_k alpha_k A_k), divided by its maximum (the map is the image's size: no resize).
    y_c is the logit, so a separate softmax layer after the Dense changes nothing."""
    images = np.random.default_rng(2).normal(size=(3, 6, 6, 3)).astype("float32")
    classes = [4, 0, 1]  # classes with positive evidence in these images (checked below)
    model = flattened_dense_model(softmax_layer=False)
    activations = ops.convert_to_numpy(
        keras.Model(model.input, model.get_layer("features").output)(images)
    )
    kernel = model.get_layer("logits").get_weights()[0].reshape(6, 6, 4, 5)  # dy/dA per class
    gradients = np.moveaxis(kernel[..., classes], -1, 0)  # (n, 6, 6, 4), one class per image
    assert not np.allclose(
        gradients, gradients.mean(axis=(1, 2), keepdims=True)
    )  # varies by position
    channel_weights = gradients.mean(axis=(1, 2))  # (n, 4)
    cams = np.maximum(np.einsum("nhwk,nk->nhw", activations, channel_weights), 0)
    assert cams.max(axis=(1, 2)).min() > 0
    expected = cams / cams.max(axis=(1, 2), keepdims=True)

    np.testing.assert_allclose(
        explain.grad_cam(model, images, class_index=classes), expected, atol=1e-5
    )
    with_softmax = flattened_dense_model(softmax_layer=True)
    assert explain.default_layer(with_softmax) == "features"
    np.testing.assert_allclose(
        explain.grad_cam(with_softmax, images, class_index=classes), expected, atol=1e-5
    )


def planted_model():
    """Evidence for class 0 is a bright red channel, against class 1; a stride-4 feature map."""
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(1, 4, strides=4, activation="relu", name="red")(inputs)  # (8, 8, 1)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(2, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((4, 4, 3, 1), "float32")
    kernel[..., 0, 0] = 1.0 / 16  # the mean of red in each 4x4 cell
    model.get_layer("red").set_weights([kernel, np.zeros(1, "float32")])
    model.get_layer("predictions").set_weights([np.array([[1.0, -1.0]], "float32"), np.zeros(2)])
    return model


def test_the_heatmap_peaks_where_the_planted_evidence_lies():
    image = np.zeros((1, 32, 32, 3), "float32")
    image[0, 20:28, 4:12, 0] = 1.0  # a red square, bottom left
    heatmaps = explain.grad_cam(planted_model(), image, class_index=0)
    row, column = np.unravel_index(np.argmax(heatmaps[0]), (32, 32))
    assert 20 <= row < 28 and 4 <= column < 12
    assert heatmaps[0, :16].max() < 0.05 and heatmaps[0, :, 16:].max() < 0.05  # nothing elsewhere
    # Class 1 has only negative evidence here: ReLU leaves nothing.
    assert explain.grad_cam(planted_model(), image, class_index=1).max() == 0.0


def test_class_index_none_int_or_one_per_image():
    model = pooled_dense_model()
    images = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")
    top = np.argmax(model.predict(images, verbose=0), axis=-1)
    per_class = {c: explain.grad_cam(model, images, class_index=c) for c in range(4)}
    expected_top = np.stack([per_class[c][i] for i, c in enumerate(top)])
    np.testing.assert_allclose(explain.grad_cam(model, images), expected_top, atol=1e-6)
    np.testing.assert_allclose(
        explain.grad_cam(model, images, class_index=[2, 0]),
        np.stack([per_class[2][0], per_class[0][1]]),
        atol=1e-6,
    )
    assert not np.allclose(per_class[0], per_class[1])  # the classes do differ


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"class_index": [0]}, "class_index=[0]: 1 classes for 2 images"),
        ({"class_index": 4}, "class_index=4: expected class indices in [0, 4)"),
        ({"class_index": [0, -1]}, "class_index=[0, -1]: expected class indices"),
        ({"class_index": "top"}, "class_index='top': expected None, an int or a list"),
        ({"layer": "nowhere"}, "layer='nowhere': no layer of model"),
        ({"layer": "avg_pool"}, "layer='avg_pool': its output has shape (None, 5)"),
    ],
)
def test_bad_arguments_are_value_errors_naming_the_argument(kwargs, message):
    images = np.zeros((2, 16, 16, 3), "float32")
    with pytest.raises(ValueError, match=re.escape(message)):
        explain.grad_cam(pooled_dense_model(), images, **kwargs)


def test_a_layer_bypassed_by_a_residual_connection_is_refused():
    inputs = keras.Input((8, 8, 3))
    a = layers.Conv2D(4, 1, name="a")(inputs)
    b = layers.Conv2D(4, 1, name="b")(a)
    x = layers.Add(name="add")([a, b])
    outputs = layers.Dense(2)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="layer='b': the model cannot be split there"):
        explain.grad_cam(model, np.zeros((1, 8, 8, 3)), layer="b")
    assert explain.grad_cam(model, np.ones((1, 8, 8, 3)), layer="add").shape == (1, 8, 8)


@pytest.mark.parametrize("name", family_sample())  # tests/model_sample.py
def test_the_default_layer_is_the_models_declared_deepest_feature_map(name):
    """Grad-CAM's default is the last convolutional feature map, which every registry model
    declares once, as its deepest feature level (`feature_layers`); where that level is a pooled
    map (VGG's block5_pool, AlexNet's pool5), the feature map it pools; where it is the
    LayerNormalization that ends ConvNeXt without its top (its top normalises after pooling
    instead), the feature map it normalises."""
    config = keras_nets.get_config(name)
    size = max(config.min_size, 96)
    model = keras_nets.create_model(name, weights=None, input_shape=(size, size, 3))
    deepest_level = config.feature_layers[max(config.feature_layers)]
    if deepest_level.endswith("_final_layernorm"):  # ConvNeXt's: the model with top has none
        notop = keras_nets.create_model(
            name, weights=None, include_top=False, input_shape=(size, size, 3)
        )
        deepest_level = notop.get_layer(deepest_level).input._keras_history.operation.name
    deepest = model.get_layer(deepest_level)
    if isinstance(deepest, (layers.MaxPooling2D, layers.AveragePooling2D)):
        deepest = deepest.input._keras_history.operation
    assert explain.default_layer(model) == deepest.name


def small_classifier():
    """A `keras-nets train`-style classifier whose feature maps do not vanish (random weights
    alone give activations of ~1e-10, whose heatmaps are rounding noise)."""
    return informative_classifier(SMALL_MODEL, 3, SMALL_SIZE, **SMALL_KWARGS)


def test_a_train_model_is_explained_at_the_last_feature_map_of_its_nested_base(tmp_path):
    model = small_classifier()
    assert explain.default_layer(model) == "out_relu"
    images = np.random.default_rng(2).uniform(0, 255, (2, SMALL_SIZE, SMALL_SIZE, 3))
    base = finetune.base_model_of(model)
    activations = ops.convert_to_numpy(base(model.get_layer("preprocess")(images)))
    kernel = model.get_layer("predictions").get_weights()[0]
    expected = closed_form(activations, kernel[:, [1, 2]].T, (SMALL_SIZE, SMALL_SIZE))

    heatmaps = explain.grad_cam(model, images, class_index=[1, 2])
    np.testing.assert_allclose(heatmaps, expected, atol=1e-5)

    model.save(tmp_path / "model.keras")  # as `keras-nets train` saves it
    reloaded = finetune.load_trained(tmp_path / "model.keras")
    np.testing.assert_allclose(explain.grad_cam(reloaded, images, [1, 2]), heatmaps, atol=1e-6)
    inner = explain.grad_cam(model, images, [1, 2], layer="block_13_expand_relu")
    assert inner.shape == (2, SMALL_SIZE, SMALL_SIZE) and not np.allclose(inner, heatmaps)


def test_overlay_blends_a_coloured_heatmap_into_the_image():
    image = np.full((20, 30, 3), 100, "uint8")
    heatmap = np.zeros((5, 6), "float32")
    heatmap[:, 3:] = 1.0  # hot on the right, resized to the image
    picture = explain.overlay(image, heatmap, alpha=0.5)
    assert picture.shape == (20, 30, 3) and picture.dtype == np.uint8
    np.testing.assert_array_equal(picture[0, 0], [50, 50, 114])  # jet(0): dark blue (0, 0, 0.5)
    np.testing.assert_array_equal(picture[0, -1], [114, 50, 50])  # jet(1): dark red (0.5, 0, 0)
    np.testing.assert_array_equal(explain.overlay(image, heatmap, alpha=0.0), image)


def test_the_built_in_jet_is_matplotlibs(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    values = (np.arange(256) / 255).reshape(1, -1)  # the points of matplotlib's 256-entry table
    with_matplotlib = matplotlib.colormaps["jet"](values)[..., :3]
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails now
    built_in = explain._colour(values, "jet")
    np.testing.assert_allclose(built_in, with_matplotlib, atol=1e-6)
    with pytest.raises(ValueError, match="colormap='viridis': without matplotlib only 'jet'"):
        explain.overlay(np.zeros((2, 2, 3)), np.zeros((2, 2)), colormap="viridis")


def test_other_matplotlib_colormaps_and_bad_overlay_arguments():
    pytest.importorskip("matplotlib")
    image, heatmap = np.zeros((4, 4, 3), "uint8"), np.ones((4, 4))
    assert not np.array_equal(
        explain.overlay(image, heatmap, colormap="viridis"), explain.overlay(image, heatmap)
    )
    with pytest.raises(ValueError, match="colormap='nope': not a matplotlib colormap"):
        explain.overlay(image, heatmap, colormap="nope")
    with pytest.raises(ValueError, match="alpha=2: expected a weight in"):
        explain.overlay(image, heatmap, alpha=2)
    with pytest.raises(ValueError, match=r"image: shape \(4, 4\); expected an RGB image"):
        explain.overlay(image[..., 0], heatmap)


# --- the same heatmaps on every backend -----------------------------------------------------

# The child imports this file (seed_model_and_images) and the helpers it imports from tests/.
CHILD_PYTHONPATH = os.pathsep.join(
    [os.path.dirname(__file__), os.path.dirname(os.path.dirname(__file__))]
    + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)
BACKEND_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from keras_nets import explain
    from test_explain import seed_model_and_images

    model, images = seed_model_and_images(*sys.argv[1:3])
    heatmaps = [explain.grad_cam(model, images), explain.grad_cam(model, images, class_index=7)]
    np.save(sys.argv[3], np.stack(heatmaps))
    """
)


def seed_model_and_images(weights, images):
    """MobileNetV2 (alpha 0.35, 96 px) with `weights`, and the images at `images`, preprocessed."""
    model = keras_nets.create_model(
        SMALL_MODEL, weights=weights, input_shape=(SMALL_SIZE, SMALL_SIZE, 3), **SMALL_KWARGS
    )
    return model, keras_nets.get_config(SMALL_MODEL).preprocess_input(np.load(images))


@pytest.mark.tensorflow_only  # compares TensorFlow here with the other backend in a child
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_heatmaps_are_the_same_on_tensorflow_and_other_backends(backend, tmp_path):
    """MobileNetV2 on TensorFlow here, on `backend` in a child process: the same heatmaps.

    Slow (a minute or more on 2 cores: JAX compiles each new operation shape once, eagerly), and
    skipped where the backend is not installed.
    """
    if subprocess.run([sys.executable, "-c", f"import {backend}"], capture_output=True).returncode:
        pytest.skip(f"{backend} is not installed: pip install {backend} to compare on it")
    keras.utils.set_random_seed(0)
    weights = str(tmp_path / "weights.weights.h5")
    keras_nets.create_model(
        SMALL_MODEL, weights=None, input_shape=(SMALL_SIZE, SMALL_SIZE, 3), **SMALL_KWARGS
    ).save_weights(weights)
    images = str(tmp_path / "images.npy")
    np.save(images, np.random.default_rng(3).uniform(0, 255, (2, SMALL_SIZE, SMALL_SIZE, 3)))
    model, x = seed_model_and_images(weights, images)
    here = np.stack([explain.grad_cam(model, x), explain.grad_cam(model, x, class_index=7)])

    out = tmp_path / f"{backend}.npy"
    result = subprocess.run(
        [sys.executable, "-c", BACKEND_SCRIPT, weights, images, str(out)],
        env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": CHILD_PYTHONPATH},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert here.max() == 1.0  # not all zero: there is something to compare
    np.testing.assert_allclose(np.load(out), here, atol=1e-4)
