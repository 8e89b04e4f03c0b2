"""`weights="imagenet"` asks for the right published file: every registry model, top and notop.

The builders run for real and the download goes through the real `pretrained.fetch` against the
local weights server (tests/weights_server.py), which serves a stand-in file under every name of the
packaged manifest (with its md5 in the test manifest, so plain http is allowed). Only the final
`load_weights_file` is replaced by a recorder, so no model needs weights of its own size: what is
checked is which file was requested from the server, which file landed in the cache and which model
it was handed to. The expected names are written out here, not read from the manifest or the code,
so a builder asking for the wrong variant (or a manifest entry pointing at the wrong file) fails.

A family's deeper members (tests/model_sample.py) are built once, with everything else their
own, by tests/core/test_features.py, which checks the manifest key their builder asks for; here
their files are checked as that key's manifest entries, the fetch and the cache on their twin.

Loading real weights through the same path is `test_builder_with_weights_imagenet_downloads_caches_
and_loads` (tests/weights/test_weights_download.py) and the per-model layout proofs.
"""

import json

import pytest
from model_sample import SAMPLED_OUT, family_sample
from weights_server import NOTOP_FILE, WeightsServer, cache_contents, md5, with_records

from keras_nets import pretrained, registry
from keras_nets.weights import manifest

pytestmark = pytest.mark.backend  # CI runs this file on JAX and PyTorch too

KERAS_TF = "weights_tf_dim_ordering_tf_kernels"

# model: (file fetched, file cached) for include_top=True, then for include_top=False.
DEFAULT_FILES = {
    "xception": (f"xception_{KERAS_TF}.h5", f"xception_{KERAS_TF}_notop.h5"),
    "inception_v3": (f"inception_v3_{KERAS_TF}.h5", f"inception_v3_{KERAS_TF}_notop.h5"),
    "resnet50": (
        # keras.applications caches Keras 3's different ResNet50 file under the plain names
        (f"resnet50_{KERAS_TF}.h5", f"resnet50_{KERAS_TF}_a7b3fe01.h5"),
        (f"resnet50_{KERAS_TF}_notop.h5", f"resnet50_{KERAS_TF}_notop_a268eb85.h5"),
    ),
    "resnet101": (f"resnet101_{KERAS_TF}.h5", f"resnet101_{KERAS_TF}_notop.h5"),
    "resnet152": (f"resnet152_{KERAS_TF}.h5", f"resnet152_{KERAS_TF}_notop.h5"),
    "resnet50_v2": (f"resnet50v2_{KERAS_TF}.h5", f"resnet50v2_{KERAS_TF}_notop.h5"),
    "resnet101_v2": (f"resnet101v2_{KERAS_TF}.h5", f"resnet101v2_{KERAS_TF}_notop.h5"),
    "resnet152_v2": (f"resnet152v2_{KERAS_TF}.h5", f"resnet152v2_{KERAS_TF}_notop.h5"),
    "mobilenet_v2": (
        f"mobilenet_v2_{KERAS_TF}_1.0_224.h5",
        f"mobilenet_v2_{KERAS_TF}_1.0_224_no_top.h5",
    ),
    "vgg16": (f"vgg16_{KERAS_TF}.h5", f"vgg16_{KERAS_TF}_notop.h5"),
    "vgg19": (f"vgg19_{KERAS_TF}.h5", f"vgg19_{KERAS_TF}_notop.h5"),
    "mobilenet": ("mobilenet_1_0_224_tf.h5", "mobilenet_1_0_224_tf_no_top.h5"),
    "mobilenet_v3_small": (
        "weights_mobilenet_v3_small_224_1.0_float.h5",
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    ),
    "mobilenet_v3_large": (
        "weights_mobilenet_v3_large_224_1.0_float.h5",
        "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
    ),
    "densenet121": (f"densenet121_{KERAS_TF}.h5", f"densenet121_{KERAS_TF}_notop.h5"),
    "densenet169": (f"densenet169_{KERAS_TF}.h5", f"densenet169_{KERAS_TF}_notop.h5"),
    "densenet201": (f"densenet201_{KERAS_TF}.h5", f"densenet201_{KERAS_TF}_notop.h5"),
    "inception_resnet_v2": (
        f"inception_resnet_v2_{KERAS_TF}.h5",
        f"inception_resnet_v2_{KERAS_TF}_notop.h5",
    ),
    "efficientnet_b0": ("efficientnetb0.h5", "efficientnetb0_notop.h5"),
    "efficientnet_b1": ("efficientnetb1.h5", "efficientnetb1_notop.h5"),
    "efficientnet_b2": ("efficientnetb2.h5", "efficientnetb2_notop.h5"),
    "efficientnet_b3": ("efficientnetb3.h5", "efficientnetb3_notop.h5"),
    "efficientnet_b4": ("efficientnetb4.h5", "efficientnetb4_notop.h5"),
    "efficientnet_b5": ("efficientnetb5.h5", "efficientnetb5_notop.h5"),
    "efficientnet_b6": ("efficientnetb6.h5", "efficientnetb6_notop.h5"),
    "efficientnet_b7": ("efficientnetb7.h5", "efficientnetb7_notop.h5"),
    **{
        f"efficientnet_v2_{v}": (f"efficientnetv2-{v}.h5", f"efficientnetv2-{v}_notop.h5")
        for v in ("b0", "b1", "b2", "b3", "s", "m", "l")
    },
    **{
        f"convnext_{size}": (f"convnext_{size}.h5", f"convnext_{size}_notop.h5")
        for size in ("tiny", "small", "base", "large", "xlarge")
    },
    "nasnet_mobile": ("nasnet_mobile.h5", "nasnet_mobile_no_top.h5"),
    "nasnet_large": ("nasnet_large.h5", "nasnet_large_no_top.h5"),
}

# Arguments that select another published variant (notop builds are cheap at any size).
VARIANT_FILES = [
    (
        "mobilenet_v2",
        {"alpha": 0.35, "input_shape": (96, 96, 3)},
        f"mobilenet_v2_{KERAS_TF}_0.35_96_no_top.h5",
    ),
    (
        "mobilenet_v2",
        {"alpha": 0.5, "input_shape": (160, 160, 3)},
        f"mobilenet_v2_{KERAS_TF}_0.5_160_no_top.h5",
    ),
    ("mobilenet", {"alpha": 0.25, "input_shape": (128, 128, 3)}, "mobilenet_2_5_128_tf_no_top.h5"),
    ("mobilenet", {"alpha": 0.75, "input_shape": (200, 200, 3)}, "mobilenet_7_5_224_tf_no_top.h5"),
    (
        "mobilenet_v3_small",
        {"minimalistic": True},
        "weights_mobilenet_v3_small_minimalistic_224_1.0_float_no_top_v2.h5",
    ),
    (
        "mobilenet_v3_large",
        {"alpha": 0.75},
        "weights_mobilenet_v3_large_224_0.75_float_no_top_v2.h5",
    ),
]

PUBLISHED_MODELS = [
    name for name in registry.list_models() if registry.get_config(name).published_weights
]


def test_every_model_with_published_weights_has_its_expected_files_written_here():
    assert sorted(DEFAULT_FILES) == sorted(PUBLISHED_MODELS)


@pytest.fixture(scope="module")
def stand_in_server(published_files, tmp_path_factory):
    """A server with a stand-in file under every file name of the packaged manifest."""
    directory = tmp_path_factory.mktemp("every_published_name")
    stand_in = (published_files[0] / NOTOP_FILE).read_bytes()
    packaged = json.loads(pretrained.PACKAGED_MANIFEST.read_text())["models"]
    for parts in packaged.values():
        for item in parts.values():
            (directory / item["file"]).write_bytes(stand_in)
    server = WeightsServer(str(directory))
    checksum = md5(published_files[0] / NOTOP_FILE)
    for parts in packaged.values():
        for item in parts.values():
            item["urls"], item["md5"] = [server.url("files", item["file"])], checksum
            item.pop("sha256", None)  # ConvNeXt's: the stand-in is checked by its md5
            item.pop("sha256", None)  # ConvNeXt's: the stand-in is checked by its md5
    manifest = directory / "manifest.json.test"
    manifest.write_text(json.dumps({"models": packaged}))
    yield server, manifest
    server.stop()


@pytest.fixture
def recorded_loads(stand_in_server, keras_home, monkeypatch):
    """[(model, path)] of every weights file loaded, with the download itself for real."""
    server, manifest = stand_in_server
    monkeypatch.setenv(pretrained.MANIFEST_ENV, str(manifest))
    monkeypatch.delenv(pretrained.MIRROR_ENV, raising=False)
    server.requests.clear()
    loads = []
    monkeypatch.setattr(
        pretrained, "load_weights_file", lambda model, path: loads.append((model, path))
    )
    return loads


def assert_fetched_and_cached(server, keras_home, loads, fetched, cached, include_top):
    assert server.requests == [f"/files/{fetched}"]
    assert cache_contents(keras_home) == with_records(cached)
    [(model, path)] = loads
    assert path == str(keras_home / "models" / cached)
    assert (len(model.output.shape) == 2) == include_top  # the file went to the model asked for


@pytest.mark.parametrize("include_top", [True, False], ids=["top", "notop"])
@pytest.mark.parametrize("name", family_sample(PUBLISHED_MODELS))
def test_weights_imagenet_fetches_caches_and_loads_the_model_s_published_file(
    name, include_top, stand_in_server, recorded_loads, keras_home
):
    files = DEFAULT_FILES[name][0 if include_top else 1]
    fetched, cached = files if isinstance(files, tuple) else (files, files)
    # notop models are built for any input size: skip the full-size feature maps
    shape = {} if include_top else {"input_shape": None}
    registry.create_model(name, weights="imagenet", include_top=include_top, **shape)
    assert_fetched_and_cached(
        stand_in_server[0], keras_home, recorded_loads, fetched, cached, include_top
    )


@pytest.mark.parametrize("name, arguments, fetched", VARIANT_FILES)
def test_arguments_select_the_published_variant(
    name, arguments, fetched, stand_in_server, recorded_loads, keras_home
):
    registry.create_model(name, weights="imagenet", include_top=False, **arguments)
    assert_fetched_and_cached(
        stand_in_server[0], keras_home, recorded_loads, fetched, fetched, False
    )


@pytest.mark.parametrize("name", [name for name in PUBLISHED_MODELS if name in SAMPLED_OUT])
def test_a_member_left_out_of_the_sample_has_its_own_files(name):
    for include_top, files in zip((True, False), DEFAULT_FILES[name]):
        fetched, cached = files if isinstance(files, tuple) else (files, files)
        entry = manifest.entry(name, include_top)
        assert (entry["file"], entry.get("cache_file", entry["file"])) == (fetched, cached)
