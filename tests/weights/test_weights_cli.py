"""`keras-nets weights list|download|verify|path`, run in-process against the test server."""

import pytest
from weights_server import NOTOP_FILE, TOP_FILE, cache_contents, md5, with_records

from keras_nets import cli, pretrained


def run(capsys, *argv):
    """(exit code, stdout, stderr) of `keras-nets weights ARGV...`."""
    capsys.readouterr()  # drop what came before
    code = cli.main(["weights", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_every_variant_its_file_and_whether_it_is_cached(published, capsys, keras_home):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert out.splitlines()[1].split() == ["tiny", "top", "-", TOP_FILE]
    assert out.splitlines()[2].split() == ["tiny", "notop", "-", NOTOP_FILE]
    assert out.splitlines()[-1] == f"cache: {keras_home / 'models'}"

    pretrained.fetch("tiny")
    size = (keras_home / "models" / TOP_FILE).stat().st_size
    _, out, _ = run(capsys, "list", "--cached")
    assert out.splitlines()[1].split() == ["tiny", "top", f"{size / 1e3:.1f}", "kB", TOP_FILE]
    assert len(out.splitlines()) == 3


def test_list_covers_the_packaged_manifest(monkeypatch, capsys, keras_home):
    monkeypatch.delenv(pretrained.MANIFEST_ENV, raising=False)
    _, out, _ = run(capsys, "list")
    listed = {tuple(line.split()[:2]) for line in out.splitlines()[1:-1]}
    assert listed == {(key, part) for key in pretrained.manifest() for part in ("top", "notop")}


def test_download_prefetches_into_the_cache(published, capsys, keras_home):
    code, out, _ = run(capsys, "download", "tiny")
    assert code == 0
    assert out.splitlines()[-1] == str(keras_home / "models" / TOP_FILE)

    code, out, _ = run(capsys, "download", "tiny", "--notop")
    assert code == 0
    assert cache_contents(keras_home) == with_records(TOP_FILE, NOTOP_FILE)


def test_download_all(published, capsys, keras_home):
    assert run(capsys, "download", "--all")[0] == 0
    assert cache_contents(keras_home) == with_records(TOP_FILE)


def test_download_failure_is_reported_with_exit_code_1(published, capsys, keras_home):
    published.use_manifest(top=published.entry(TOP_FILE, urls=[published.dead + "/x.h5"]))
    code, _, err = run(capsys, "download", "tiny")
    assert code == 1
    assert f"could not download {TOP_FILE}" in err
    assert str(keras_home / "models" / TOP_FILE) in err


@pytest.mark.parametrize("argv", [["download"]])
def test_download_needs_keys_or_all(published, capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "give KEY... or --all" in err


def test_verify_reports_good_and_bad_cached_files(published, capsys, keras_home):
    pretrained.fetch("tiny")
    pretrained.fetch("tiny", include_top=False)
    code, out, _ = run(capsys, "verify")
    assert code == 0
    assert f"ok   {keras_home / 'models' / TOP_FILE} (md5; sha256 unchanged since cached)" in out
    assert out.splitlines()[-1].startswith("2 cached files checked, 0 bad")

    (keras_home / "models" / NOTOP_FILE).write_bytes(b"corrupt")
    code, out, _ = run(capsys, "verify")
    assert code == 1
    assert (
        f"BAD  {keras_home / 'models' / NOTOP_FILE}: md5 mismatch: expected "
        f"{published.md5(NOTOP_FILE)}, got {md5(keras_home / 'models' / NOTOP_FILE)}"
    ) in out
    assert (  # changed since the download: not provably ours any more
        "keras-nets did not download it, so it is left as it is: move it away and run "
        "`keras-nets weights download tiny --notop`"
    ) in out

    (keras_home / "models" / NOTOP_FILE).unlink()
    pretrained.fetch("tiny", include_top=False)
    published.use_manifest(notop=published.entry(NOTOP_FILE, md5="0" * 32))  # republished
    code, out, _ = run(capsys, "verify")
    assert code == 1
    assert (
        "`keras-nets weights download tiny --notop` replaces it (keras-nets downloaded it)" in out
    )


def test_verify_checks_structure_where_no_md5_is_published(published, capsys, keras_home):
    published.trust_http()
    published.use_manifest(top=published.entry(TOP_FILE, md5=None))
    pretrained.fetch("tiny")
    code, out, _ = run(capsys, "verify", "tiny")
    assert code == 0
    assert "(HDF5 structure, no md5 published; sha256 unchanged since cached)" in out


def test_path_tells_where_the_file_is_or_goes(published, capsys, keras_home):
    code, out, err = run(capsys, "path", "tiny", "--notop")
    assert code == 0
    assert out == f"{keras_home / 'models' / NOTOP_FILE}\n"
    assert "not cached yet" in err and published.server.url("files", NOTOP_FILE) in err

    pretrained.fetch("tiny", include_top=False)
    code, out, err = run(capsys, "path", "tiny", "--notop")
    assert (out, err) == (f"{keras_home / 'models' / NOTOP_FILE}\n", "")


def test_unreadable_manifest_is_an_error_not_a_traceback(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv(pretrained.MANIFEST_ENV, str(tmp_path / "missing.json"))
    code, _, err = run(capsys, "list")
    assert code == 2
    assert "cannot read the weights manifest, KERAS_NETS_MANIFEST=" in err


def test_an_unknown_variant_key_lists_the_published_variants(monkeypatch, capsys):
    monkeypatch.delenv(pretrained.MANIFEST_ENV, raising=False)
    code, _, err = run(capsys, "path", "mobilenet_v2_0.9_224")
    assert code == 2
    assert "no published ImageNet weights for 'mobilenet_v2_0.9_224'" in err
    assert "mobilenet_v2_0.35_96, mobilenet_v2_0.35_128" in err


# What `create_model(NAME, weights="imagenet")` loads with the builder's defaults (the files
# tests/weights/test_imagenet_weights_resolution.py checks against the builders).
DEFAULT_TOP_FILES = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
    "mobilenet": "mobilenet_1_0_224_tf.h5",
    "mobilenet_v3_small": "weights_mobilenet_v3_small_224_1.0_float.h5",
    "mobilenet_v3_large": "weights_mobilenet_v3_large_224_1.0_float.h5",
    "xception": "xception_weights_tf_dim_ordering_tf_kernels.h5",
}


@pytest.mark.parametrize("name", list(DEFAULT_TOP_FILES))
def test_a_registry_name_is_its_default_variant(monkeypatch, capsys, keras_home, name):
    monkeypatch.delenv(pretrained.MANIFEST_ENV, raising=False)
    code, out, err = run(capsys, "path", name)
    assert code == 0 and out == f"{keras_home / 'models' / DEFAULT_TOP_FILES[name]}\n"
    assert "variants are" not in err


def test_download_and_verify_take_every_variant_of_a_name_with_all(monkeypatch, capsys, keras_home):
    monkeypatch.delenv(pretrained.MANIFEST_ENV, raising=False)
    fetched = []

    def fetch(key, include_top=True):  # what would be fetched
        fetched.append(pretrained.resolve(key))
        return key

    monkeypatch.setattr(pretrained, "fetch", fetch)
    assert run(capsys, "download", "mobilenet_v2")[0] == 0
    assert fetched == ["mobilenet_v2_1.0_224"]
    fetched.clear()
    assert run(capsys, "download", "mobilenet_v2", "--all")[0] == 0
    assert fetched == pretrained.variants("mobilenet_v2") and len(fetched) == 22
    code, out, _ = run(capsys, "verify", "mobilenet", "--all")
    assert code == 0 and out.startswith("0 cached files checked")
