"""ShuffleNetV2 is the network of the paper: its widths, its units, its channel shuffle."""

import keras
import numpy as np
import pytest

from keras_nets import ShuffleNetV2
from keras_nets.shufflenet_v2 import channel_shuffle

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too


@pytest.mark.parametrize(
    "scale, paper_params, trainable, total",
    [
        (0.5, 1.4e6, 1_366_792, 1_374_744),
        (1.0, 2.3e6, 2_278_604, 2_294_784),
        (1.5, 3.5e6, 3_503_624, 3_527_064),
        (2.0, 7.4e6, 7_393_996, 7_427_712),
    ],
)
def test_parameter_counts_are_the_papers(scale, paper_params, trainable, total):
    """The paper's Table 5 counts (trainable weights; BN moving statistics are extra)."""
    model = ShuffleNetV2(scale)
    trainable_params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable_params == trainable
    assert abs(trainable_params - paper_params) / paper_params < 0.03
    assert model.count_params() == total


def test_stage_output_shapes_follow_table_5():
    model = ShuffleNetV2(1.0, include_top=False, input_shape=(224, 224, 3))
    shapes = {
        "maxpool": (None, 56, 56, 24),
        "stage2_unit4_concat": (None, 28, 28, 116),
        "stage3_unit8_concat": (None, 14, 14, 232),
        "stage4_unit4_concat": (None, 7, 7, 464),
        "conv5_relu": (None, 7, 7, 1024),
    }
    for name, shape in shapes.items():
        assert tuple(model.get_layer(name).output.shape) == shape
    assert model.output_shape == (None, 7, 7, 1024)
    assert ShuffleNetV2(1.0).input_shape == (None, 224, 224, 3)


def test_scale_2_has_a_2048_channel_conv5_and_configurable_classes():
    model = ShuffleNetV2(2.0, classes=10, input_shape=(64, 64, 3))
    assert model.get_layer("conv5").output.shape[-1] == 2048
    assert model.output_shape == (None, 10)


def test_feature_extractor_takes_any_size_and_pools():
    model = ShuffleNetV2(0.5, include_top=False, input_shape=(None, None, 3), pooling="avg")
    assert model.output_shape == (None, 1024)
    assert model.predict(np.zeros((1, 40, 56, 3)), verbose=0).shape == (1, 1024)


def test_channel_shuffle_interleaves_the_two_halves():
    """Reshape channels to (2, 4), transpose to (4, 2), flatten: 0 4 1 5 2 6 3 7."""
    x = np.arange(8, dtype="float32").reshape(1, 1, 1, 8)
    shuffled = keras.ops.convert_to_numpy(channel_shuffle(keras.ops.convert_to_tensor(x)))
    assert shuffled.ravel().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    paper = x.reshape(1, 1, 1, 2, 4).transpose(0, 1, 2, 4, 3).reshape(1, 1, 1, 8)
    np.testing.assert_array_equal(shuffled, paper)


def test_units_split_shuffle_and_downsample():
    model = ShuffleNetV2(0.5, include_top=False, input_shape=(64, 64, 3))
    # a basic unit's branch sees half the channels; a stride-2 unit's branches see them all
    assert model.get_layer("stage3_unit2_branch_conv1").input.shape[-1] == 48
    assert model.get_layer("stage3_unit1_right_conv1").input.shape[-1] == 48
    assert model.get_layer("stage3_unit1_left_dwconv").input.shape[-1] == 48
    assert model.get_layer("stage3_unit1_right_dwconv").output.shape[1:3] == (4, 4)


def test_trains_one_step_on_random_data():
    model = ShuffleNetV2(0.5, classes=3, input_shape=(32, 32, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images, labels = rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32"), np.array([0, 1, 2, 0])
    before = model.get_layer("conv1").get_weights()[0].copy()
    loss = model.train_on_batch(images, labels)
    assert np.isfinite(loss)
    assert not np.allclose(model.get_layer("conv1").get_weights()[0], before)


def test_imagenet_weights_do_not_exist():
    with pytest.raises(ValueError, match="weights='imagenet': no published ImageNet weights"):
        ShuffleNetV2(weights="imagenet")


def test_rejects_unknown_scale():
    with pytest.raises(ValueError, match=r"scale=0\.75: expected one of 0\.5, 1\.0, 1\.5, 2\.0"):
        ShuffleNetV2(0.75)
