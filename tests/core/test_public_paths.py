"""Every public import path of keras-nets before issue 24's new layout still works: each module
path below imports, and each name listed for it is there. The names are those each module
defined or re-exported at 7e91594 (public ones, not starting with "_"), plus the package's lazy
exports and builders that README.md and the notebooks import from `keras_nets`. A module that
moved keeps its old path as a thin module forwarding to its new home (keras_nets.core.moved).

Importing every module imports Keras once; the test takes a few seconds.
"""

import importlib
import json
import pathlib

import pytest

# {module path: [public names]}, generated from 7e91594's keras_nets with `ast` (module-level
# definitions and names re-exported from keras_nets modules), plus the package's lazy exports.
PUBLIC_NAMES = json.loads((pathlib.Path(__file__).parent / "public_names.json").read_text())


@pytest.mark.parametrize("path", sorted(PUBLIC_NAMES))
def test_old_path_imports_with_its_names(path):
    module = importlib.import_module(path)
    assert [name for name in PUBLIC_NAMES[path] if not hasattr(module, name)] == []


@pytest.mark.parametrize("path", sorted(p for p in PUBLIC_NAMES if p != "keras_nets"))
def test_old_path_is_an_attribute_of_its_package(path):
    """`from keras_nets import pretrained`, `keras_nets.inference.exporting`: as before."""
    package, _, name = path.rpartition(".")
    module = importlib.import_module(path)
    assert getattr(importlib.import_module(package), name) is module


def test_from_import_of_every_name():
    """`from path import name` (what README and the notebooks write) for each listed name."""
    missing = []
    for path, names in PUBLIC_NAMES.items():
        for name in names:
            namespace = {}
            try:
                exec(f"from {path} import {name}", namespace)
            except ImportError as error:
                missing.append(f"{path}.{name}: {error}")
    assert missing == []


def test_setting_a_name_on_an_old_path_reaches_its_home(monkeypatch):
    """Code (and tests) that patch `pretrained.CHUNK` patch what the download reads, and undoing
    the patch gives the home its value back."""
    from keras_nets import pretrained
    from keras_nets.weights import download

    chunk = download.CHUNK
    with monkeypatch.context() as patch:
        patch.setattr(pretrained, "CHUNK", 7)
        patch.setattr(pretrained, "CHUNK", 8)
        assert download.CHUNK == 8 and pretrained.CHUNK == 8
    assert chunk == download.CHUNK and chunk == pretrained.CHUNK
