"""How the tests prove that a builder loads the published weights files.

The published files cannot be downloaded here, so the proof goes through a reference
implementation that is known to load them (`keras.applications`, or `keras-applications==1.0.8`
for the Keras 2 era ResNet50 names): build the reference, give every weight a random value
(BatchNormalization moving statistics included), write those weights as a legacy Keras HDF5 file
(the format of the published files), load that file into our builder and compare outputs before
any softmax.
"""

import re

import h5py
import keras
import keras_applications
import numpy as np


def keras2_applications_module(name):
    """A `keras_applications` (1.0.8) module; call its builders with `**keras2_builder_kwargs()`.

    1.0.8 has no global `set_keras_submodules`: each builder takes the Keras modules as kwargs.
    """
    return getattr(keras_applications, name)


def keras2_builder_kwargs():
    return dict(backend=keras.backend, layers=keras.layers, models=keras.models, utils=keras.utils)


def randomize_weights(model, seed=0):
    """Gives every variable of `model` a random value that keeps activations in a sane range.

    A Normalization layer's mean and variance count too (EfficientNet's are weights of the
    published files); its sample count, unused by the network, stays.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for variable in layer.weights:
            shape = tuple(variable.shape)
            name = variable.path.rsplit("/", 1)[-1]
            if not shape:  # Normalization's count
                continue
            if name in ("moving_variance", "gamma", "variance"):
                value = rng.uniform(0.5, 1.5, shape)
            elif name in ("beta", "moving_mean", "bias", "mean"):
                value = rng.normal(0.0, 0.1, shape)
            else:  # kernels: He-uniform on the fan-in, so deep stacks neither explode nor vanish
                fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else shape[0]
                if "depthwise" in name:
                    fan_in = int(np.prod(shape[:2]))
                limit = np.sqrt(6.0 / max(fan_in, 1))
                value = rng.uniform(-limit, limit, shape)
            variable.assign(value.astype(variable.dtype))
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()  # it computes with copies of its weights, taken here


def write_legacy_h5(model, path, keras_version="2.1.2"):
    """Writes `model`'s weights as a Keras 2 `save_weights` HDF5 file, the published format.

    Root attribute `layer_names` lists every layer; each layer has a group with attribute
    `weight_names` and its datasets in weight order (trainable first, then non-trainable).
    """
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode("utf8") for layer in model.layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = keras_version.encode("utf8")
        for layer in model.layers:
            group = f.create_group(layer.name)
            weights = layer.trainable_weights + layer.non_trainable_weights
            names = [f"{layer.name}/{w.path.rsplit('/', 1)[-1]}:0".encode() for w in weights]
            group.attrs["weight_names"] = names
            for name, weight in zip(names, weights):
                group.create_dataset(name.decode("utf8"), data=keras.ops.convert_to_numpy(weight))
    return path


def random_images(shape, seed=0):
    """A batch of images already scaled like preprocess_input output."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype("float32")


def assert_same_outputs(actual, expected, rtol=1e-5):
    """Equal to a relative `rtol`, measured against the largest magnitude of `expected`."""
    actual, expected = (np.asarray(keras.ops.convert_to_numpy(y)) for y in (actual, expected))
    assert actual.shape == expected.shape
    scale = float(np.max(np.abs(expected)))
    assert scale > 0, "the reference output is all zeros: the comparison would prove nothing"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def assert_loads_published_layout(reference, ours_builder, tmp_path, images, **kwargs):
    """Reference weights -> legacy HDF5 -> our builder: same layer names, params, outputs."""
    randomize_weights(reference)
    path = write_legacy_h5(reference, tmp_path / "published_layout.h5")
    ours = ours_builder(weights=str(path), **kwargs)

    our_names = {layer.name for layer in ours.layers}
    missing = [l.name for l in reference.layers if l.name not in our_names and not _auto_named(l)]
    assert not missing, f"reference layers missing from ours: {missing[:10]}"
    assert ours.count_params() == reference.count_params()
    assert_same_outputs(ours(images, training=False), reference(images, training=False))
    return ours


def assert_loads_published_top_and_notop(
    reference, ours_builder, tmp_path, images, last_base_layer, **kwargs
):
    """`assert_loads_published_layout` for both published files of a large network from one
    reference built with its top: the notop file is written from its layers up to
    `last_base_layer`, which is what the reference's notop model holds (one build of a large
    reference costs 10-40 s here). Weighted layers are compared, in order, for both. Returns
    our models (top, notop)."""
    top = assert_loads_published_layout(reference, ours_builder, tmp_path, images, **kwargs)
    assert weighted_layers(top) == weighted_layers(reference)
    notop_reference = keras.Model(reference.input, reference.get_layer(last_base_layer).output)
    path = write_legacy_h5(notop_reference, tmp_path / "published_layout_notop.h5")
    head = ("include_top", "classifier_activation", "classes")
    notop_kwargs = {key: value for key, value in kwargs.items() if key not in head}
    notop = ours_builder(weights=str(path), include_top=False, **notop_kwargs)
    assert weighted_layers(notop) == weighted_layers(notop_reference)
    assert_same_outputs(notop(images, training=False), notop_reference(images, training=False))
    return top, notop


def weighted_layers(model):
    """[(name, [weight shapes])] of the layers with weights, in the order a legacy `.h5` file
    loads them; a layer the reference leaves unnamed has None for its name (Keras numbers its
    automatic names by what was built before: EfficientNet's "normalization_1")."""
    return [
        (None if _auto_named(layer) else layer.name, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
        if layer.weights
    ]


AUTO_NAME = re.compile(
    r"^(conv2d|batch_normalization|add|activation|global_average_pooling2d|global_max_pooling2d|"
    r"input_layer|concatenate|max_pooling2d|average_pooling2d|dropout|zero_padding2d|re_lu|"
    r"depthwise_conv2d|multiply|reshape|rescaling|normalization|flatten|dense|separable_conv2d|"
    r"layer_normalization|cropping2d)"
    r"(_\d+)?$"
)


def _auto_named(layer):
    """Layers the reference leaves unnamed get Keras' automatic names, which need not match."""
    return bool(AUTO_NAME.match(layer.name))
