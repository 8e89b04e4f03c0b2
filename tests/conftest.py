import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))  # tests import their shared helpers by name

import keras  # noqa: E402
import pytest  # noqa: E402

from weights_server import published, published_files  # noqa: E402, F401 - fixtures for all tests


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Automatic layer names restart per test, so no test depends on what ran before it.

    free_memory=False skips a full garbage collection per test; the names reset all the same.
    """
    keras.backend.clear_session(free_memory=False)
    yield


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache: `$KERAS_HOME/models` is where published weights are cached."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home
