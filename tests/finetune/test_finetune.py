"""keras_nets.finetune: a new head on a frozen registry base, then fine-tuning the base's top."""

import math
import re

import keras
import numpy as np
import pytest
from generated_data import SMALL_KWARGS, SMALL_MODEL, SMALL_SIZE, digits
from informative_weights import assert_informative, informative_classifier, random_images

from keras_nets import finetune, imagenet, registry

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too


@pytest.fixture(scope="module")
def trained_base(tmp_path_factory):
    """A notop weights file for the small base: to `build_classifier`, a base with trained
    weights (which ones does not matter to these tests), unlike `weights=None`."""
    path = tmp_path_factory.mktemp("base") / "base.weights.h5"
    keras.utils.set_random_seed(0)
    base = registry.get_config(SMALL_MODEL).build(
        include_top=False, weights=None, input_shape=(SMALL_SIZE, SMALL_SIZE, 3), **SMALL_KWARGS
    )
    base.save_weights(path)
    return str(path)


def small_classifier(weights, classes=3, **kwargs):
    return finetune.build_classifier(
        SMALL_MODEL, classes, image_size=SMALL_SIZE, weights=weights, **SMALL_KWARGS, **kwargs
    )


def one_training_step(model, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (4, SMALL_SIZE, SMALL_SIZE, 3)).astype("float32")
    labels = rng.integers(0, model.output_shape[-1], 4)
    model.run_eagerly = True  # one step: tracing the training graph would cost more than it
    model.fit(images, labels, epochs=1, batch_size=4, verbose=0)


def values(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def batch_norm_statistics(model):
    return [
        v
        for v in finetune.base_model_of(model).non_trainable_weights
        if v.path.endswith(("moving_mean", "moving_variance"))
    ]


@pytest.mark.parametrize("mode", ["tf", "caffe", "torch"])
def test_preprocessing_layers_compute_preprocess_input_and_survive_saving(tmp_path, mode):
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 5, 7, 3)).astype("float32")
    model = keras.Sequential([keras.Input((5, 7, 3)), finetune.preprocessing_layers(mode)])
    model.save(tmp_path / "preprocess.keras")
    reloaded = keras.saving.load_model(tmp_path / "preprocess.keras")
    expected = imagenet.preprocess_input(pixels, mode)
    for m in (model, reloaded):
        np.testing.assert_allclose(m.predict(pixels, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_classifier_is_a_new_head_on_a_frozen_base(trained_base):
    model = small_classifier(trained_base, classes=3)
    base = finetune.base_model_of(model)
    assert [layer.name for layer in model.layers] == [
        "image",
        "preprocess",
        base.name,
        "avg_pool",
        "dropout",
        "predictions",
    ]
    assert model.input_shape == (None, SMALL_SIZE, SMALL_SIZE, 3)
    assert model.output_shape == (None, 3)
    assert not base.trainable
    assert [w.path for w in model.trainable_weights] == ["predictions/kernel", "predictions/bias"]
    assert model.get_layer("dropout").rate == 0.2


def test_training_changes_only_the_head_of_a_frozen_classifier(trained_base):
    model = small_classifier(trained_base)
    base_before = values(finetune.base_model_of(model).weights)
    head_before = values(model.get_layer("predictions").weights)
    one_training_step(model)
    for before, after in zip(base_before, values(finetune.base_model_of(model).weights)):
        np.testing.assert_array_equal(before, after)
    assert not np.array_equal(head_before[0], values(model.get_layer("predictions").weights)[0])


def test_batch_norm_stays_in_inference_mode_when_the_base_trains(trained_base):
    model = small_classifier(trained_base, freeze=False)
    statistics = values(batch_norm_statistics(model))
    kernel = finetune.base_model_of(model).get_layer("Conv1")
    kernel_before = values(kernel.weights)[0]
    one_training_step(model)
    assert not np.array_equal(kernel_before, values(kernel.weights)[0])  # the base learned
    for before, after in zip(statistics, values(batch_norm_statistics(model))):
        np.testing.assert_array_equal(before, after)  # but kept its ImageNet statistics


def test_unfreeze_top_from_a_block_trains_that_block_and_everything_after_it(trained_base):
    model = small_classifier(trained_base)
    count = finetune.unfreeze_top(model, "block_15", learning_rate=1e-5)
    layers = finetune.base_model_of(model).layers
    first = next(i for i, layer in enumerate(layers) if layer.name.startswith("block_15_"))
    assert count == len(layers) - first
    assert not any(layer.trainable for layer in layers[:first])
    batch_norm = keras.layers.BatchNormalization
    assert all(layer.trainable != isinstance(layer, batch_norm) for layer in layers[first:])
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-5)
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert "block_16_project" in trainable and "block_14_project" not in trainable


def test_unfreeze_top_from_a_layer_name(trained_base):
    model = small_classifier(trained_base)
    assert finetune.unfreeze_top(model, "Conv_1") == 3  # Conv_1, Conv_1_bn, out_relu
    assert [w.path for w in model.trainable_weights] == [
        "Conv_1/kernel",
        "predictions/kernel",
        "predictions/bias",
    ]  # BatchNorm stays frozen: its statistics are the ImageNet ones


def test_unfreeze_top_rejects_a_name_that_is_not_in_the_base():
    with pytest.raises(ValueError, match=r"start='block_99' names no layer or block of"):
        finetune.unfreeze_top(small_classifier(None), "block_99")


def test_replace_classifier_keeps_everything_but_the_last_layer():
    model = small_classifier(None, classes=2)
    replaced = finetune.replace_classifier(model, 5)
    assert replaced.output_shape == (None, 5)
    assert finetune.base_model_of(replaced) is finetune.base_model_of(model)
    assert replaced.get_layer("dropout") is model.get_layer("dropout")


def test_saved_classifier_reloads_with_plain_keras(tmp_path):
    model = informative_classifier(SMALL_MODEL, 2, SMALL_SIZE, **SMALL_KWARGS)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    images = random_images(3, SMALL_SIZE, seed=1)
    expected = keras.ops.convert_to_numpy(model(images))
    assert_informative(expected, "the classifier's predictions")  # a lost base or head shows
    reloaded_outputs = keras.ops.convert_to_numpy(reloaded(images))  # a torch tensor on PyTorch
    np.testing.assert_allclose(reloaded_outputs, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"classes": 1}, r"classes=1: expected an integer of at least 2"),
        ({"dropout": 1.0}, r"dropout=1.0: expected a rate in \[0, 1\)"),
        ({"image_size": 16}, r"image_size=16: mobilenet_v2 needs an integer of at least 32"),
        ({"depth": 3}, r"depth: not an argument of MobileNetV2"),
    ],
)
def test_bad_arguments_are_value_errors(kwargs, message):
    arguments = {"classes": 2, "image_size": SMALL_SIZE, "weights": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        finetune.build_classifier(SMALL_MODEL, **arguments)


def test_unknown_base_lists_the_registry():
    with pytest.raises(ValueError, match=r"model='lenet' is not a keras_nets model"):
        finetune.build_classifier("lenet", 2)


def test_a_file_that_is_not_a_keras_model_is_a_value_error_naming_it(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("not a model")
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: not a valid Keras model file"):
        finetune.load_trained(path)


# --- from random weights: the whole network trains, BatchNorm in training mode -------------------


def test_a_random_base_trains_whole_batch_norm_included():
    model = finetune.build_classifier(SMALL_MODEL, 3, image_size=32, weights=None, **SMALL_KWARGS)
    base = finetune.base_model_of(model)
    batch_norm = keras.layers.BatchNormalization
    batch_norms = [layer for layer in base.layers if isinstance(layer, batch_norm)]
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert {"Conv1", "bn_Conv1", "Conv_1_bn", "predictions"} <= trainable
    assert all(layer.momentum == finetune.FROM_SCRATCH_MOMENTUM for layer in batch_norms)


@pytest.mark.parametrize("build", [finetune.build_classifier, finetune.classifier_to_train])
def test_a_frozen_random_base_is_refused(build):
    with pytest.raises(
        ValueError,
        match=r"^freeze=True with weights=None: a frozen base with "
        r"random weights cannot learn; train the whole network \(freeze=False\)",
    ):
        build(SMALL_MODEL, 3, image_size=32, weights=None, freeze=True, **SMALL_KWARGS)


# jit_compile per backend: TensorFlow's XLA was slower on CPU (finetune.compile_classifier); JAX
# without jit runs op by op, 1.1 s a step where jit takes 0.03 s (this file's digits test: 231 s
# on JAX in CI, 26 s with jit); PyTorch's "auto" is eager.
JIT_COMPILED = {"tensorflow": False, "jax": True, "torch": False}


def test_training_compiles_the_step_where_that_is_faster():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    finetune.compile_classifier(model, 1e-3)
    assert model.jit_compile is JIT_COMPILED[keras.backend.backend()]


def test_from_scratch_a_network_learns_real_digits():
    """Scans of 0 and 1 from scikit-learn's digits at 32 px, from random weights: within 45 steps
    the training loss falls well below ln(2), that of a constant guess. With BatchNorm frozen, as
    on a trained base, the activations vanish and the loss stays at ln(2)."""
    images, labels = digits(size=32, classes=2)
    keras.utils.set_random_seed(0)
    model = finetune.classifier_to_train(
        SMALL_MODEL, 2, weights=None, image_size=32, learning_rate=3e-3, **SMALL_KWARGS
    )
    history = model.fit(images[:240], labels[:240], epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * math.log(2)
