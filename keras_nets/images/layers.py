"""A model's `preprocess_input` as standard Keras layers, saved with the model.

Used where the scaling becomes part of the graph: `create_model(name, include_preprocessing=True)`
(keras_nets.core.factory) and the classifiers of `keras_nets.finetune`, so that a saved `.keras`
file takes raw 0-255 RGB and loads without keras_nets.
"""

import numpy as np
from keras import layers


def preprocessing_layers(mode):
    """`imagenet.preprocess_input(x, mode)` as standard Keras layers (saved with the model).

    "tf" is a Rescaling to [-1, 1]; "torch" a Normalization with the ImageNet mean and standard
    deviation in 0-255 units; "caffe" a fixed 1x1 linear map that swaps RGB to BGR and subtracts
    the ImageNet mean (a frozen Dense on the channel axis); "none" passes pixels through (the
    model preprocesses them itself).
    """
    if mode == "tf":
        return layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")
    if mode == "torch":
        mean = 255.0 * np.array([0.485, 0.456, 0.406])
        std = 255.0 * np.array([0.229, 0.224, 0.225])
        return layers.Normalization(mean=mean, variance=std**2, name="preprocess")
    if mode == "caffe":
        rgb_to_bgr = np.eye(3, dtype="float32")[:, ::-1]
        mean_bgr = np.array([103.939, 116.779, 123.68], dtype="float32")
        layer = layers.Dense(3, name="preprocess", trainable=False)
        layer.build((None, 3))
        layer.set_weights([rgb_to_bgr, -mean_bgr])
        return layer
    if mode == "none":
        return layers.Identity(name="preprocess")
    raise ValueError(f"preprocessing mode={mode!r}: expected 'tf', 'caffe', 'torch' or 'none'")
