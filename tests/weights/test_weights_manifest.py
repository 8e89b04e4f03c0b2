"""The packaged weights manifest: every published variant, the published hashes, https only."""

import json
import pathlib
import re
import sys

import pytest

from keras_nets import pretrained

REPO = pathlib.Path(__file__).resolve().parents[2]
ORIGINAL = "https://github.com/"
MIRROR = "https://storage.googleapis.com/tensorflow/keras-applications/"
# Keras 3 publishes EfficientNet's files alone, in another bucket.
EFFICIENTNET_BUCKET = "https://storage.googleapis.com/keras-applications/"

# The published md5 of the four seed models, as keras-applications 1.0.8 gives them: key -> (top, notop)
PUBLISHED_MD5 = {
    "xception": ("0a58e3b7378bc2990ea3b43d5981f1f6", "b0042744bf5b25fce3cb969f33bebb97"),
    "inception_v3": ("9a0d58056eeedaa3f26cb7ebd46da564", "bcbd6486424b2319ff4ef7d526e38f63"),
    # The v0.2 file with the Keras 2 era layer names, not Keras 3's later resnet50 file.
    "resnet50": ("a7b3fe01876f51b976af0dea6bc144eb", "a268eb855778b3df3c7506639542a6af"),
}
MOBILENET_V2 = [
    f"mobilenet_v2_{a}_{r}" for a in (0.35, 0.5, 0.75, 1.0) for r in (96, 128, 160, 192, 224)
]
MOBILENET_V2 += ["mobilenet_v2_1.3_224", "mobilenet_v2_1.4_224"]  # the wider two: 224 only
MOBILENET = [f"mobilenet_{a}_{r}" for a in (0.25, 0.5, 0.75, 1.0) for r in (128, 160, 192, 224)]
MOBILENET_V3 = [
    "mobilenet_v3_large_0.75",
    "mobilenet_v3_large_1.0",
    "mobilenet_v3_large_minimalistic_1.0",
    "mobilenet_v3_small_0.75",
    "mobilenet_v3_small_1.0",
    "mobilenet_v3_small_minimalistic_1.0",
]
EFFICIENTNET = [f"efficientnet_b{k}" for k in range(8)]
EFFICIENTNET_V2 = [f"efficientnet_v2_{v}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")]
CONVNEXT = [f"convnext_{size}" for size in ("tiny", "small", "base", "large", "xlarge")]
# Keras 3 publishes ConvNeXt's files with sha256s (WEIGHTS_HASHES), no md5: key -> (top, notop)
CONVNEXT_TINY_SHA256 = (
    "8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff",
    "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1",
)
EVERY_KEY = [
    "xception",
    "inception_v3",
    "resnet50",
    "vgg16",
    "vgg19",
    "inception_resnet_v2",
    "densenet121",
    "densenet169",
    "densenet201",
    "resnet101",
    "resnet152",
    "resnet50_v2",
    "resnet101_v2",
    "resnet152_v2",
    *MOBILENET_V2,
    *MOBILENET,
    *MOBILENET_V3,
    *EFFICIENTNET,
    *EFFICIENTNET_V2,
    *CONVNEXT,
    "nasnet_mobile",
    "nasnet_large",
]


@pytest.fixture
def packaged(monkeypatch):
    monkeypatch.delenv(pretrained.MANIFEST_ENV, raising=False)
    return pretrained.manifest()


def entries(manifest):
    return [(key, part, e) for key, parts in manifest.items() for part, e in parts.items()]


def test_every_published_variant_is_listed(packaged):
    assert sorted(packaged) == sorted(EVERY_KEY)
    assert all(set(parts) == {"top", "notop"} for parts in packaged.values())


@pytest.mark.parametrize("key", PUBLISHED_MD5)
def test_seed_models_carry_the_published_hashes(packaged, key):
    assert (packaged[key]["top"]["md5"], packaged[key]["notop"]["md5"]) == PUBLISHED_MD5[key]


def test_resnet50_is_the_v02_file(packaged):
    assert packaged["resnet50"]["top"]["urls"] == [
        "https://github.com/fchollet/deep-learning-models/releases/download/v0.2/"
        "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    ]


def test_md5_is_null_exactly_where_none_is_published(packaged):
    unhashed = {key for key, _, e in entries(packaged) if e["md5"] is None}
    assert unhashed == set(MOBILENET_V2 + MOBILENET + CONVNEXT)
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["md5"]) for _, _, e in entries(packaged) if e["md5"])


def test_a_sha256_stands_for_the_md5_exactly_where_keras_publishes_one(packaged):
    """ConvNeXt's files: Keras 3 gives sha256s; every other entry has no sha256 field."""
    hashed = {key for key, _, e in entries(packaged) if "sha256" in e}
    assert hashed == set(CONVNEXT)
    assert all(
        re.fullmatch(r"[0-9a-f]{64}", e["sha256"])
        for key, _, e in entries(packaged)
        if key in hashed
    )
    tiny = packaged["convnext_tiny"]
    assert (tiny["top"]["sha256"], tiny["notop"]["sha256"]) == CONVNEXT_TINY_SHA256


def test_only_https_urls_each_ending_in_the_file_name(packaged):
    for key, part, e in entries(packaged):
        assert e["urls"], (key, part)
        for url in e["urls"]:
            assert url.startswith("https://"), url
            published = url.rsplit("/", 1)[1]
            if key.startswith("nasnet"):  # published as NASNet-mobile.h5, NASNet-large-no-top.h5,
                # ...; both references save them as nasnet_mobile.h5, ... (get_file's fname)
                published = published.lower().replace("-", "_")
            assert published == e["file"], url


def test_original_release_first_then_the_keras_applications_mirror(packaged):
    for key, part, e in entries(packaged):
        if key.startswith("efficientnet_v2"):  # published by Keras 3 only, in a folder of it
            assert e["urls"] == [MIRROR + "efficientnet_v2/" + e["file"]]
        elif key.startswith("efficientnet"):  # published by Keras 3 only, in its own bucket
            assert e["urls"] == [EFFICIENTNET_BUCKET + e["file"]]
        elif key.startswith(("mobilenet_v3", "convnext")):  # published by Keras 3 only
            assert [u.startswith(MIRROR) for u in e["urls"]] == [True]
        elif key == "resnet50":  # Keras 3 mirrors a different resnet50 file
            assert [u.startswith(ORIGINAL) for u in e["urls"]] == [True]
        else:
            assert [e["urls"][0].startswith(ORIGINAL), e["urls"][1].startswith(MIRROR)] == [
                True,
                True,
            ]


def test_resnet50_is_cached_apart_from_the_keras_3_file_of_the_same_name(packaged):
    """keras.applications.ResNet50 caches another file (other names, md5 2cb95161...) under the
    v0.2 file name; sharing that cache name would make each library re-download over the other."""
    for part, md5 in zip(("top", "notop"), PUBLISHED_MD5["resnet50"]):
        item = packaged["resnet50"][part]
        stem = item["file"].removesuffix(".h5")
        assert item["cache_file"] == f"{stem}_{md5[:8]}.h5"
    assert all("cache_file" not in e for key, _, e in entries(packaged) if key != "resnet50")


def test_files_are_distinct(packaged):
    files = [e["file"] for _, _, e in entries(packaged)]
    assert len(files) == len(set(files))


def test_unknown_variant_lists_only_the_variants_of_its_model(packaged):
    with pytest.raises(ValueError) as raised:
        pretrained.check_published("mobilenet_0.3_128", model="mobilenet")
    listed = str(raised.value).split("are: ")[1].split(", ")
    assert listed == MOBILENET

    with pytest.raises(ValueError, match=r"mobilenet_v2_1\.3_224, mobilenet_v2_1\.4_224$"):
        pretrained.check_published("mobilenet_v2_1.3_96", model="mobilenet_v2")
    with pytest.raises(
        ValueError, match=r"variants are: mobilenet_v3_small_0\.75, .*minimalistic_1\.0$"
    ):
        pretrained.check_published("mobilenet_v3_small_0.5", model="mobilenet_v3_small")


@pytest.mark.parametrize(
    "key, listed",
    [
        ("mobilenet_v3", MOBILENET_V3),
        ("mobilenet_0.9_224", MOBILENET),
        ("mobilenet_v2_0.35_97", MOBILENET_V2),
    ],
)
def test_an_unknown_name_or_variant_instead_of_a_key_lists_the_keys(packaged, key, listed):
    # A registry name ("mobilenet") is no such case: it stands for its default variant, as in
    # create_model (tests/weights/test_weights_cli.py).
    with pytest.raises(ValueError) as raised:
        pretrained.entry(key)
    assert str(raised.value).split("are: ")[1].split(", ") == listed


def test_packaged_manifest_is_the_repository_file():
    """keras_nets/weights_manifest.json links to the top-level file (a wheel holds a copy)."""
    if not (REPO / "weights_manifest.json").exists():
        pytest.skip("installed package, not a source checkout")
    assert pretrained.PACKAGED_MANIFEST.is_symlink()
    assert pretrained.PACKAGED_MANIFEST.resolve() == (REPO / "weights_manifest.json").resolve()


def test_generator_reproduces_the_manifest():
    """weights_manifest.json is tools/make_weights_manifest.py's output from the installed
    Keras and keras-applications sources, not typed by hand."""
    if not (REPO / "tools" / "make_weights_manifest.py").exists():
        pytest.skip("installed package, not a source checkout")
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import make_weights_manifest
    finally:
        sys.path.remove(str(REPO / "tools"))
    text = (REPO / "weights_manifest.json").read_text()
    generated = make_weights_manifest.build_manifest()
    recorded = json.loads(text)
    if generated["models"] != recorded["models"] and (
        generated["generated_from"] != recorded["generated_from"]
    ):
        pytest.skip(
            f"the installed sources {generated['generated_from']} differ from the manifest's"
        )
    # Only the models are generated from the sources: a newer Keras with the same weights files
    # is no failure, so the versions recorded are compared to nothing.
    generated["generated_from"] = recorded["generated_from"]
    assert make_weights_manifest.render(generated) == text
