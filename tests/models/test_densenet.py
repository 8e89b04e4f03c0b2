"""DenseNet-121, -169 and -201 load the published keras.applications weights layouts exactly.

DenseNet-121 is proved at its published 224x224, with and without its top; since the classifier
sits on a global average pool, the same weights fit any input size, so DenseNet-169 and -201 are
proved at 64x64 (the notop files hold the same layers minus the classifier).
"""

import keras
import numpy as np
import pytest
from published_layout import assert_loads_published_layout, random_images

from keras_nets import DenseNet121, DenseNet169, DenseNet201, densenet

DENSENETS = {
    "densenet121": (DenseNet121, keras.applications.DenseNet121, 8_062_504, 224),
    "densenet169": (DenseNet169, keras.applications.DenseNet169, 14_307_880, 64),
    "densenet201": (DenseNet201, keras.applications.DenseNet201, 20_242_984, 64),
}


@pytest.mark.parametrize("model", DENSENETS)
def test_loads_keras_applications_weights_layout(tmp_path, model):
    ours, reference, published_parameters, size = DENSENETS[model]
    built = assert_loads_published_layout(
        reference(weights=None, input_shape=(size, size, 3), classifier_activation=None),
        ours,
        tmp_path,
        random_images((2, size, size, 3)),
        input_shape=(size, size, 3),
        classifier_activation=None,
    )
    assert built.count_params() == published_parameters


def test_loads_keras_applications_notop_layout(tmp_path):
    assert_loads_published_layout(
        keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(64, 64, 3)),
        DenseNet121,
        tmp_path,
        random_images((2, 64, 64, 3)),
        include_top=False,
        input_shape=(64, 64, 3),
    )


def test_preprocess_input_is_torch_style_and_leaves_input_unchanged():
    images = np.full((1, 2, 2, 3), 255.0, dtype="float32")
    x = densenet.preprocess_input(images)
    expected = (1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(x[0, 0, 0], expected, rtol=1e-6)
    assert images[0, 0, 0, 0] == 255.0


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_feature_pooling_layer_has_the_keras_name(pooling):
    model = DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 3), pooling=pooling)
    assert model.layers[-1].name == f"{pooling}_pool"
