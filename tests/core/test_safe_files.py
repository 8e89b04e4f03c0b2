"""The safe-file policy every module calls (keras_nets.safe_files): what may be replaced, what may
be opened, what a killed process left and may be removed."""

import os
import time

import pytest

from keras_nets import safe_files
from keras_nets.safe_files import EXISTS, STALE_SECONDS, overwrite_problem

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


def regular_file(path):
    path.write_text("the user's notes")


def directory(path):
    path.mkdir()


def fifo(path):
    os.mkfifo(path)  # opening it to read would block forever


def link_to_a_file(path):
    regular_file(path.parent / "target.txt")
    path.symlink_to("target.txt")


def dangling_link(path):
    path.symlink_to("nothing-here")


# (what is at the path, overwrite, directory written, what overwrite_problem says)
CASES = [
    ("nothing", None, False, False, None),
    ("a file, no overwrite", regular_file, False, False, EXISTS),
    ("a file, overwrite", regular_file, True, False, None),
    ("a directory where a file goes, overwrite", directory, True, False, "a directory"),
    ("a directory where one goes, no overwrite", directory, False, True, EXISTS),
    ("a directory where one goes, overwrite", directory, True, True, None),
    ("a file where a directory goes, overwrite", regular_file, True, True, "a regular file"),
    ("a FIFO, overwrite", fifo, True, False, "a FIFO"),
    ("a link to a file, overwrite", link_to_a_file, True, False, "a symbolic link"),
    ("a dangling link", dangling_link, False, False, "a symbolic link"),
]


@pytest.mark.parametrize(
    "existing, overwrite, writes_directory, expected",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_only_what_a_run_could_have_written_is_replaced_and_only_with_overwrite(
    tmp_path, existing, overwrite, writes_directory, expected
):
    path = tmp_path / "out"
    if existing is not None:
        existing(path)
    before = sorted(os.listdir(tmp_path))

    assert overwrite_problem(path, overwrite, directory=writes_directory) == expected
    assert sorted(os.listdir(tmp_path)) == before  # a check, never a change


def test_a_fifo_is_never_a_regular_file_and_is_never_opened(tmp_path):
    path = tmp_path / "photo.jpg"
    os.mkfifo(path)  # a check that opened it would block this test forever

    assert not safe_files.is_regular_file(path)
    assert safe_files.not_a_regular_file(path) == "not a regular file (a FIFO); not opened"


def test_a_link_is_a_regular_file_only_when_links_are_followed(tmp_path):
    link_to_a_file(tmp_path / "link")

    assert safe_files.is_regular_file(tmp_path / "link")
    assert not safe_files.is_regular_file(tmp_path / "link", follow_symlinks=False)
    assert safe_files.not_a_regular_file(tmp_path / "link") is None
    assert safe_files.not_a_regular_file(tmp_path / "missing").startswith("cannot be read (")


def aged(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def test_stale_leftovers_go_and_a_live_writers_files_stay(tmp_path):
    killed_dir = tmp_path / "killed.partial"
    killed_dir.mkdir()
    (killed_dir / "model.keras").write_text("half a model")
    aged(killed_dir, STALE_SECONDS + 60)
    killed_file = tmp_path / "killed-file.partial"
    killed_file.write_text("half a file")
    aged(killed_file, STALE_SECONDS + 60)
    running = tmp_path / "running.partial"
    running.mkdir()
    aged(running, STALE_SECONDS - 60)  # a slow download, still under way
    link = tmp_path / "link.partial"
    link.symlink_to(killed_dir)  # a link is never ours to judge, whatever its age
    aged(link, STALE_SECONDS + 60)
    paths = [killed_dir, killed_file, running, link, tmp_path / "gone.partial"]

    removed = safe_files.remove_stale(paths)

    assert sorted(removed) == sorted([killed_dir, killed_file])
    assert sorted(os.listdir(tmp_path)) == ["link.partial", "running.partial"]


def test_partials_of_a_killed_writer_go_whatever_their_age_under_the_lock(tmp_path):
    (tmp_path / "model.keras").write_text("the finished model")
    (tmp_path / ".model.partial-123.keras").write_text("a killed writer's")
    (tmp_path / ".notes.partial-123.txt").write_text("not a name we were given")

    with safe_files.locked(tmp_path, "output"):
        removed = safe_files.remove_stale_partials(tmp_path, ["model.keras"])

    assert removed == [".model.partial-123.keras"]
    assert sorted(os.listdir(tmp_path)) == [".notes.partial-123.txt", "model.keras"]


def write_directory(path, text):
    os.mkdir(path)
    (path / "part-0").write_text(text)


def write_output(output, text, overwrite=False, failure=None):
    """Writes `output` as another program would, through `atomic_directory`; raises `failure`
    (an exception) half-way, once part of the directory is written."""
    with safe_files.atomic_directory(output, overwrite) as partial:
        write_directory(partial, text)
        if failure is not None:
            raise failure


def test_a_directory_appears_whole_or_not_at_all(tmp_path):
    output = tmp_path / "predictions.parquet"
    with pytest.raises(KeyboardInterrupt):
        write_output(output, "half", failure=KeyboardInterrupt())
    assert os.listdir(tmp_path) == []  # neither the output nor its temporary name

    write_output(output, "first")
    assert os.listdir(tmp_path) == ["predictions.parquet"]
    assert (output / "part-0").read_text() == "first"


def test_a_directory_is_replaced_only_with_overwrite_and_only_once_the_new_one_is_whole(tmp_path):
    output = tmp_path / "predictions.parquet"
    write_directory(output, "old")
    with pytest.raises(FileExistsError):
        write_output(output, "new")
    with pytest.raises(RuntimeError):
        write_output(output, "new, failing", overwrite=True, failure=RuntimeError())
    assert (output / "part-0").read_text() == "old"

    write_output(output, "new", overwrite=True)
    assert os.listdir(tmp_path) == ["predictions.parquet"]
    assert (output / "part-0").read_text() == "new"
