"""VGG19: `keras_nets.vgg`'s builder under the module path of `keras.applications.vgg19`."""

from keras_nets.vgg import VGG19, decode_predictions, preprocess_input

__all__ = ["VGG19", "decode_predictions", "preprocess_input"]
