"""The one layer of keras-nets that Keras does not have, ConvNeXt's layer scale, and the one
activation, GELU written with erf for the conversion to ONNX.

Every other network here is plain Keras layers, so its saved `.keras` file loads without
keras-nets. A ConvNeXt block ends by multiplying each channel by a learned factor (Touvron et
al., "Going deeper with Image Transformers", 2021: "LayerScale"), a weight of shape (channels,)
in the published files, which no Keras layer holds. `LayerScale` is registered with Keras as
"keras_nets>LayerScale", so `keras.saving.load_model` finds it once keras-nets is imported:
`import keras_nets` registers it without importing Keras itself (see keras_nets/__init__.py).
"""

import keras


@keras.saving.register_keras_serializable(package="keras_nets", name="LayerScale")
class LayerScale(keras.layers.Layer):
    """Multiplies each channel (the last axis) by its own learned factor, `gamma`.

    Keras' `keras.src.applications.convnext.LayerScale`, the same arguments and weight: the
    factors start at `init_values` (1e-6 in ConvNeXt, so that each block starts out close to
    the identity) and there are `projection_dim` of them.
    """

    def __init__(self, init_values, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = projection_dim

    def build(self, input_shape):
        self.gamma = self.add_weight(
            shape=(self.projection_dim,),
            initializer=keras.initializers.Constant(self.init_values),
            trainable=True,
            name="gamma",
        )

    def call(self, x):
        return x * self.gamma

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"init_values": self.init_values, "projection_dim": self.projection_dim})
        return config


@keras.saving.register_keras_serializable(package="keras_nets", name="gelu_erf")
def gelu_erf(x):
    """GELU, 0.5 x (1 + erf(x / sqrt(2))): Keras' exact "gelu" written with erf.

    TensorFlow computes the exact GELU with erfc, which tf2onnx cannot convert; the fast path
    (`keras_nets.inference.folding`) puts this function in its place in an `Activation`, which
    converts to ONNX's Erf. The two agree to float rounding. Registered as "keras_nets>gelu_erf",
    so a folded model saved as `.keras` loads where keras-nets is imported.
    """
    return 0.5 * x * (1.0 + keras.ops.erf(x * 0.7071067811865476))
