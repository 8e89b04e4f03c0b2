"""What the command line says about the model reaches `Classifier.load` whole: `model_options`
(keras_nets.commands._common) gives predict, evaluate and explain the loading keywords of the flags
each command has, and nothing of a flag it does not have. Parsing only: nothing is built.
"""

import pytest

from keras_nets.cli import build_parser
from keras_nets.commands._common import model_options

MODEL = {"model": "mobilenet_v2", "weights": None, "alpha": 0.35, "size": 96}
MODEL_FLAGS = ["--model", "mobilenet_v2", "--weights", "none", "--alpha", "0.35", "--size", "96"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["predict", "a.jpg", *MODEL_FLAGS], {**MODEL, "fast": False, "calibration": None}),
        (
            ["predict", "a.jpg", *MODEL_FLAGS, "--fast", "--int8", "--calibration", "cal"],
            {**MODEL, "fast": True, "calibration": "cal"},
        ),
        (
            ["evaluate", "data", *MODEL_FLAGS, "--fast", "--crop-pct", "0.9"],
            {**MODEL, "fast": True, "crop_pct": 0.9},
        ),
        (["explain", "a.jpg", "--output", "cams", *MODEL_FLAGS], MODEL),
        (
            ["predict", "a.jpg", "--weights", "ImageNet"],
            {
                **MODEL,
                "model": None,
                "weights": "imagenet",
                "alpha": None,
                "size": None,
                "fast": False,
                "calibration": None,
            },
        ),
    ],
    ids=["predict", "predict-fast-int8", "evaluate-fast-crop", "explain", "imagenet-any-case"],
)
def test_each_command_passes_the_loading_flags_it_has(argv, expected):
    assert model_options(build_parser().parse_args(argv)) == expected
