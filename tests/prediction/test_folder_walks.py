"""Every walk over a folder: a sub-folder that cannot be listed is reported by name and the others
are still walked, by every command that walks folders.

Two ways a folder cannot be listed, both met in real archives:
- no permission to read it. The tests run as root, where `chmod 000` blocks nothing: the folder
  is made unreadable with chmod, and as root `os.scandir` is made to raise the PermissionError
  a user would get, for that folder only;
- a path longer than the system allows (PATH_MAX, 4096 bytes on Linux): real, made with
  `os.mkdir(..., dir_fd=...)` one level at a time, and refused by the kernel as root too.

Each case runs through each walker: `keras-nets predict` (printed and `--output`, resumed),
`keras-nets evaluate`, `keras-nets explain` and the dataset check of `keras-nets train`.
"""

import json
import os

import pytest
from generated_data import smooth_rgb
from PIL import Image

from keras_nets import training
from keras_nets.cli import main
from keras_nets.image_files import find_images

pytestmark = pytest.mark.usefixtures("loaded_once")  # tests/prediction/conftest.py


def save_photo(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth_rgb()).save(path)
    return path


def without_permission(folder, monkeypatch):
    """`folder` made unreadable: chmod 000, and as root (whom chmod does not stop) os.scandir
    raising for it what it raises for a user. Returns the path a walk reports."""
    folder.mkdir(parents=True)
    save_photo(folder / "hidden_from_us.png")
    os.chmod(folder, 0)
    if os.geteuid() == 0:
        real_scandir, identity = os.scandir, (os.stat(folder).st_dev, os.stat(folder).st_ino)

        def scandir(path="."):  # by inode: the same folder under any path
            info = os.stat(path)
            if (info.st_dev, info.st_ino) == identity:
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
    return folder, "Permission denied"


def too_long(folder, monkeypatch):
    """A chain of folders under `folder` whose full path passes PATH_MAX (4096 bytes): the walk
    cannot list the first one past it. Returns that folder's path."""
    folder.mkdir(parents=True)
    name, path = "d" * 200, folder
    fd = os.open(folder, os.O_RDONLY)
    try:
        while len(os.fsencode(path)) < 4096:  # PATH_MAX counts the final NUL
            os.mkdir(name, dir_fd=fd)
            deeper = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, path = deeper, path / name
        with open(os.open("deep.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            Image.fromarray(smooth_rgb()).save(f, format="PNG")
    finally:
        os.close(fd)
    return path, "File name too long"


UNLISTABLE = {"no permission": without_permission, "path too long": too_long}


@pytest.fixture(params=list(UNLISTABLE))
def archive(request, tmp_path, monkeypatch):
    """(root, unlisted folder, reason): red/ and blue/ photos with one folder in red/ that cannot
    be listed, walked before a readable folder of red/ that it must not hide."""
    root = tmp_path / "archive"
    save_photo(root / "blue" / "b1.png")
    save_photo(root / "blue" / "b2.png")
    save_photo(root / "red" / "r1.png")
    save_photo(root / "red" / "z_later" / "r2.png")
    unlisted, reason = UNLISTABLE[request.param](root / "red" / "a_first", monkeypatch)
    yield root, unlisted, reason
    os.chmod(root / "red" / "a_first", 0o755)


READABLE = ["blue/b1.png", "blue/b2.png", "red/r1.png", "red/z_later/r2.png"]


def run(capsys, *argv):
    status = main([*map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def test_find_images_reports_the_folder_and_walks_the_others(archive):
    root, unlisted, reason = archive
    reported = []
    images, missing = find_images([root], on_error=lambda *args: reported.append(args))
    assert images == [root / name for name in READABLE] and missing == []
    assert [(str(folder), message) for folder, message in reported] == [
        (str(unlisted), f"{unlisted}: cannot be listed ({reason}); skipped")
    ]


def test_predict_prints_the_others(capsys, archive, trained_model):
    root, unlisted, reason = archive
    status, out, err = run(capsys, "predict", root, "--weights", trained_model, "--json")
    assert status == 1
    assert [json.loads(line)["image"] for line in out.splitlines()] == [
        str(root / name) for name in READABLE
    ]
    assert f"{unlisted}: cannot be listed ({reason}); skipped" in err.splitlines()


def test_predict_into_a_file_records_it_and_a_resume_finishes(
    capsys, archive, trained_model, tmp_path
):
    root, unlisted, reason = archive
    output = tmp_path / "results.jsonl"
    status, _, err = run(capsys, "predict", root, "--weights", trained_model, "--output", output)
    assert status == 1, err
    lines = [json.loads(line) for line in output.read_text().splitlines()[1:]]
    written = [str(root / name) for name in READABLE]
    written.insert(3, str(unlisted))  # where the walk met it: after red/'s files, before z_later/
    assert [line["image"] for line in lines] == written
    assert lines[3]["error"] == f"{unlisted}: cannot be listed ({reason}); skipped"
    status, _, err = run(
        capsys, "predict", root, "--weights", trained_model, "--output", output, "--resume"
    )
    assert status == 0 and "0 image(s) predicted" in err and "5 already there" in err
    assert len(output.read_text().splitlines()) == 1 + 5  # nothing twice


def test_evaluate_scores_the_others(capsys, archive, trained_model, tmp_path):
    root, unlisted, reason = archive
    report = tmp_path / "eval.json"
    status, out, err = run(capsys, "evaluate", root, "--weights", trained_model, "--json", report)
    assert status == 1
    assert "images: 4 (1 could not be read)" in out
    assert f"{unlisted}: cannot be listed ({reason}); skipped" in err
    failed = json.loads(report.read_text())["failed"]
    assert [entry["image"] for entry in failed] == [str(unlisted)]


def test_explain_explains_the_others(capsys, archive, trained_model, tmp_path):
    root, unlisted, reason = archive
    status, _, err = run(
        capsys, "explain", root, "--weights", trained_model, "--output", tmp_path / "cams"
    )
    assert status == 1
    assert f"{unlisted}: cannot be listed ({reason}); skipped" in err
    assert len(list((tmp_path / "cams").iterdir())) == len(READABLE)


def test_the_training_check_names_it(archive):
    root, unlisted, reason = archive
    dataset = root.parent / "dataset"
    dataset.mkdir()
    os.rename(root, dataset / "train")
    os.symlink(dataset / "train", dataset / "validation")
    with pytest.raises(training.DatasetError) as error:
        training.check_dataset(dataset, classes=2)
    message = str(error.value)
    assert message.startswith("2 folder(s) cannot be listed and 0 image(s) cannot be decoded")
    assert f"cannot be listed ({reason})" in message
    os.rename(dataset / "train", root)  # for the fixture's clean-up
