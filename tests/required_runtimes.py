"""The inference runtimes are part of the test extra, so a missing or broken one fails the tests.

`pip install ".[test]"` installs ONNX Runtime, OpenVINO, onnx and tf2onnx (setup.cfg). A test that
needs a runtime calls `require_runtime(name)`: it fails when the runtime is not installed, unless
the environment variable KERAS_NETS_TEST_SKIP_RUNTIMES lists it (comma separated, e.g.
"openvino"), which turns the failure into a skip for a machine where that runtime cannot install.
"""

import os

import pytest

from keras_nets.inference import runtimes

SKIP_VARIABLE = "KERAS_NETS_TEST_SKIP_RUNTIMES"


def require_runtime(name):
    if runtimes.get_runtime(name).is_installed():
        return
    if name in os.environ.get(SKIP_VARIABLE, "").replace(" ", "").split(","):
        pytest.skip(f"runtime {name!r} is not installed and ${SKIP_VARIABLE} lists it")
    pytest.fail(
        f"runtime {name!r} is not installed (or its converter, tf2onnx and onnx, is not), although "
        f'`pip install ".[test]"` installs it; set {SKIP_VARIABLE}={name} to skip its tests'
    )
