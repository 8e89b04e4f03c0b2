"""Published weights under misuse: each row a bad setup, and the one clear line it must give.

Every row runs `keras-nets weights ...` in-process against the local weights server
(tests/weights_server.py) and checks the exit code, the message, that no Python traceback escapes
and that no partial file is left in the cache. The rows with no published md5 are the MobileNet
V1/V2 case (76 of the 106 packaged files): only https, file: and local folders may serve those.
"""

import os

import h5py
import keras
import pytest
from published_layout import write_legacy_h5
from weights_server import TOP_FILE, cache_contents, tiny_model, with_records

from keras_nets import cli, pretrained


def run(capsys, *argv):
    """(exit code, stdout, stderr) of `keras-nets weights ARGV...`; no exception may escape."""
    capsys.readouterr()
    code = cli.main(["weights", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def cached(keras_home, name=TOP_FILE):
    return keras_home / "models" / name


# Setups: each makes one thing wrong --------------------------------------------------------------


def keras_home_is_a_file(published, keras_home, tmp_path, monkeypatch):
    (tmp_path / "home_file").write_text("not a directory")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home_file"))


def manifest_is_a_directory(published, keras_home, tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.MANIFEST_ENV, str(tmp_path))


def manifest_is_a_fifo(published, keras_home, tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "manifest.fifo")  # opening it would block forever
    monkeypatch.setenv(pretrained.MANIFEST_ENV, str(tmp_path / "manifest.fifo"))


def manifest_entry_with_empty_file_name(published, keras_home, tmp_path, monkeypatch):
    published.use_manifest(top={**published.entry(TOP_FILE), "file": ""})


def plain_http_without_md5(published, keras_home, tmp_path, monkeypatch):
    published.use_manifest(top=published.entry(TOP_FILE, md5=None))


def plain_http_mirror_without_md5(published, keras_home, tmp_path, monkeypatch):
    published.use_manifest(top=published.entry(TOP_FILE, md5=None, urls=[]))
    monkeypatch.setenv(pretrained.MIRROR_ENV, published.server.base + "/files/")


def ftp_without_md5(published, keras_home, tmp_path, monkeypatch):
    ftp = ["ftp://127.0.0.1/x.h5"]
    published.use_manifest(top=published.entry(TOP_FILE, md5=None, urls=ftp))


def cache_path_is_a_directory(published, keras_home, tmp_path, monkeypatch):
    cached(keras_home).mkdir(parents=True)


def cache_path_is_a_fifo(published, keras_home, tmp_path, monkeypatch):
    cached(keras_home).parent.mkdir()
    os.mkfifo(cached(keras_home))


def cached_file_without_md5_changed(published, keras_home, tmp_path, monkeypatch):
    # Downloaded over https in real life; here the test opts in to its plain-http server.
    published.trust_http()
    published.use_manifest(top=published.entry(TOP_FILE, md5=None))
    pretrained.fetch("tiny")
    with h5py.File(cached(keras_home), "r+") as f:  # still a valid weights file of the right shape
        f.attrs["note"] = "changed"


def cached_file_with_md5_but_other_recorded_sha256(published, keras_home, tmp_path, monkeypatch):
    # The md5 still matches (as a collision would); the sha256 recorded at first entry does not.
    pretrained.fetch("tiny")
    pretrained.record_sha256(cached(keras_home), "0" * 64)


def mirror_stalls(published, keras_home, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "DOWNLOAD_TIMEOUT", 0.5)
    published.use_manifest(top=published.entry(TOP_FILE, kind="stall"))


def mirror_sends_300_mb_for_a_small_file(published, keras_home, tmp_path, monkeypatch):
    published.use_manifest(top=published.entry(TOP_FILE, kind="bloated", max_bytes=100_000))


def local_mirror_is_a_fifo(published, keras_home, tmp_path, monkeypatch):
    (tmp_path / "mirror").mkdir()
    os.mkfifo(tmp_path / "mirror" / TOP_FILE)
    monkeypatch.setenv(pretrained.MIRROR_ENV, str(tmp_path / "mirror"))
    published.use_manifest(top=published.entry(TOP_FILE, urls=[]))


def copied_by_hand_not_the_published_file(published, keras_home, tmp_path, monkeypatch):
    cached(keras_home).parent.mkdir()
    cached(keras_home).write_bytes(b"the user's own file")


# (setup, argv, exit code, message, what the cache holds afterwards: None = not checked)
CHANGED = with_records(TOP_FILE)  # the changed file is reported, never deleted
CLI_CASES = {
    "KERAS_HOME names a file": (
        keras_home_is_a_file,
        ["download", "tiny"],
        1,
        "home_file is a file, not a directory; set KERAS_HOME",
        None,
    ),
    "KERAS_NETS_MANIFEST names a directory": (
        manifest_is_a_directory,
        ["list"],
        2,
        "cannot read the weights manifest, KERAS_NETS_MANIFEST=",
        None,
    ),
    "KERAS_NETS_MANIFEST names a FIFO": (
        manifest_is_a_fifo,
        ["verify"],
        2,
        "manifest.fifo: expected a JSON file",
        None,
    ),
    "manifest entry with an empty file name": (
        manifest_entry_with_empty_file_name,
        ["download", "tiny"],
        1,
        "file '' must be a plain file name",
        [],
    ),
    "plain http and no md5": (
        plain_http_without_md5,
        ["download", "tiny"],
        1,
        "refused: http URL is not authenticated",
        [],
    ),
    "plain-http mirror and no md5": (
        plain_http_mirror_without_md5,
        ["download", "tiny"],
        1,
        f"set {pretrained.ALLOW_HTTP_ENV}=1 if you trust",
        [],
    ),
    "ftp and no md5": (
        ftp_without_md5,
        ["download", "tiny"],
        1,
        "refused: ftp URL is not authenticated",
        [],
    ),
    "cache path is a directory": (
        cache_path_is_a_directory,
        ["download", "tiny"],
        1,
        "is not a regular file",
        [TOP_FILE],
    ),
    "cache path is a FIFO (verify)": (cache_path_is_a_fifo, ["verify"], 1, "BAD", [TOP_FILE]),
    "cache path is a FIFO (download)": (
        cache_path_is_a_fifo,
        ["download", "tiny"],
        1,
        "is not a regular file",
        [TOP_FILE],
    ),
    "cached file without md5 changed (verify)": (
        cached_file_without_md5_changed,
        ["verify"],
        1,
        "it changed since it entered the cache",
        CHANGED,
    ),
    "cached file without md5 changed (download)": (
        cached_file_without_md5_changed,
        ["download", "tiny"],
        1,
        "delete it (and",
        CHANGED,
    ),
    "md5 matches, recorded sha256 does not": (
        cached_file_with_md5_but_other_recorded_sha256,
        ["download", "tiny"],
        1,
        "sha256 recorded in",
        CHANGED,
    ),
    "mirror stalls after 1,000 bytes": (
        mirror_stalls,
        ["download", "tiny"],
        1,
        "after 1,000 bytes; gave up (timeout)",
        [],
    ),
    "mirror sends 300 MB for a small file": (
        mirror_sends_300_mb_for_a_small_file,
        ["download", "tiny"],
        1,
        "it announces 300,000,000 bytes: more than 100,000 bytes",
        [],
    ),
    "local mirror holds a FIFO": (
        local_mirror_is_a_fifo,
        ["download", "tiny"],
        1,
        "is not a regular file (a FIFO",
        [],
    ),
    "a file copied by hand that is not the published one": (
        copied_by_hand_not_the_published_file,
        ["download", "tiny"],
        1,
        "so it is left as it is: move it away",
        [TOP_FILE],
    ),
    "empty key": (
        None,
        ["path", ""],
        2,
        "`keras-nets weights list` shows every published key",
        None,
    ),
    "list with a key nothing starts with": (
        None,
        ["list", "nosuch"],
        2,
        "no published key starts with 'nosuch'",
        None,
    ),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_weights_cli_misuse_is_one_clear_line(
    case, published, keras_home, tmp_path, monkeypatch, capsys
):
    setup, argv, expected_code, message, cache_after = CLI_CASES[case]
    if setup:
        setup(published, keras_home, tmp_path, monkeypatch)
    requests_before = list(published.server.requests)

    code, out, err = run(capsys, *argv)

    assert code == expected_code
    assert message in out + err
    if cache_after is not None:
        assert cache_contents(keras_home) == cache_after
    if "refused" in message or "trust" in message:
        assert published.server.requests == requests_before  # nothing was even downloaded


# Weights files given by path, and the progress bar -----------------------------------------------


def keras3_weights_of_a_wider_model(tmp_path):
    other = tiny_model(filters=5)
    other.save_weights(tmp_path / "other.weights.h5")
    return (
        tmp_path / "other.weights.h5",
        "the file has 8 weights (178 values), the model 8 (143 values)",
    )


def legacy_h5_of_a_wider_model(tmp_path):
    return write_legacy_h5(tiny_model(filters=5), tmp_path / "other.h5"), "Shape mismatch"


def legacy_h5_of_a_model_without_top(tmp_path):
    return write_legacy_h5(
        tiny_model(include_top=False), tmp_path / "notop.h5"
    ), "the file has 2 layers"


def whole_keras_model_file(tmp_path):
    path = tmp_path / "model.keras"
    tiny_model().save(path)
    head = path.read_bytes()[:16]
    assert head.startswith(b"PK")  # a zip file
    # quoted as Python writes bytes: in double quotes when the zip header's time stamp or
    # checksum holds a ' (about one run in 40 expected b'PK... and failed)
    return path, f"is not an HDF5 file (it starts with {head!r}"


def hdf5_weights_with_another_extension(tmp_path):
    path = write_legacy_h5(tiny_model(), tmp_path / "weights.h5")
    return path.rename(tmp_path / "weights.bin"), "a weights file name must end in .h5 or .hdf5"


def user_warnings(recwarn):
    return [w for w in recwarn if issubclass(w.category, UserWarning)]


WEIGHTS_FILE_CASES = {
    "a .weights.h5 of another model": keras3_weights_of_a_wider_model,
    "an .h5 of another width": legacy_h5_of_a_wider_model,
    "an .h5 without the top": legacy_h5_of_a_model_without_top,
    "a whole .keras model": whole_keras_model_file,
    "HDF5 weights named .bin": hdf5_weights_with_another_extension,
}


@pytest.mark.parametrize("case", WEIGHTS_FILE_CASES)
def test_a_weights_file_that_does_not_fit_is_one_short_message(case, tmp_path, recwarn, capfd):
    path, detail = WEIGHTS_FILE_CASES[case](tmp_path)
    capfd.readouterr()
    with pytest.raises(ValueError) as raised:
        pretrained.load_weights_file(tiny_model(), path)
    message = str(raised.value)
    assert str(path) in message and detail in message
    assert len(message) < 600 and "\n" not in message  # not Keras' arrays and object lists
    assert not user_warnings(recwarn)  # nor its warning per skipped layer
    out, err = capfd.readouterr()
    assert out == err == ""


def test_weights_path_of_another_model_through_a_builder_is_one_short_message(tmp_path, recwarn):
    from keras_nets.mobilenet_v2 import MobileNetV2

    other = MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), include_top=False, weights=None)
    other.save_weights(tmp_path / "mobilenet_v2_0.35.weights.h5")
    keras.backend.clear_session(free_memory=False)
    with pytest.raises(ValueError) as raised:
        MobileNetV2(
            alpha=0.5,
            input_shape=(96, 96, 3),
            include_top=False,
            weights=str(tmp_path / "mobilenet_v2_0.35.weights.h5"),
        )
    message = str(raised.value)
    assert "mobilenet_v2_0.35.weights.h5 does not fit model 'mobilenetv2_0.50_96'" in message
    assert len(message) < 600 and not user_warnings(recwarn)


def test_a_download_cut_short_ends_its_progress_line_before_the_error(
    published, keras_home, capsys
):
    published.use_manifest(top=published.entry(TOP_FILE, kind="truncated"))
    with pytest.raises(pretrained.WeightsDownloadError):
        pretrained.fetch("tiny")
    out = capsys.readouterr().out
    assert "Downloading data from" in out and out.endswith("\n")
    assert cache_contents(keras_home) == []
