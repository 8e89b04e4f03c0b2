"""VGG16: `keras_nets.vgg`'s builder under the module path of `keras.applications.vgg16`."""

from keras_nets.vgg import VGG16, decode_predictions, preprocess_input

__all__ = ["VGG16", "decode_predictions", "preprocess_input"]
