"""Every numeric argument of predict, evaluate, explain and train has a range, and the range also
bounds memory: a value outside it is one line naming the argument, the value and the range,
before anything is read or built (it was a MemoryError or a traceback from deep inside).

Each row: the command line, and the line it gets."""

import pytest

from keras_nets.cli import main

TRAIN = "train data --model mobilenet_v2 --classes 2 --output run"

RANGES = {
    # crop-pct 1e-6 passed the (0, 1] check, then resized shorter sides to 224 million pixels
    "evaluate data --crop-pct 1e-6": "argument --crop-pct: '1e-6': expected a fraction in [0.5, 1]",
    "evaluate data --crop-pct 0.3": "argument --crop-pct: '0.3': expected a fraction in [0.5, 1]",
    "evaluate data --batch 100000": "argument --batch: '100000': expected at most 512",
    "predict x.jpg --batch 100000": "argument --batch: '100000': expected at most 512",
    "predict x.jpg --top 0": "argument --top: '0': expected a",
    "explain x.jpg --output cams --top -1": "argument --top: '-1': expected a positive integer",
    f"{TRAIN} --batch 100000": "argument --batch: '100000': expected at most 512",
    f"{TRAIN} --tclasses 1000000000": "argument --tclasses: '1000000000': expected at most 100000",
    f"{TRAIN} --seed -1": "argument --seed: '-1': expected an integer from 0 to 2**32-1",
    f"{TRAIN} --alpha inf": "argument --alpha: 'inf': expected a finite number above 0",
}


@pytest.mark.parametrize("command_line", list(RANGES))
def test_a_value_out_of_range_is_one_line(capsys, command_line):
    with pytest.raises(SystemExit) as exit:
        main(command_line.split())
    err = capsys.readouterr().err
    assert exit.value.code == 2 and RANGES[command_line] in err, err
    assert "Traceback" not in err


def test_a_training_batch_too_large_for_its_input_size_is_one_line(capsys):
    assert main(f"{TRAIN} --size 2048 --batch 32".split()) == 2
    assert capsys.readouterr().err == (
        "keras-nets train: error: --batch 32 with --size 2048: 134217728 pixels per batch, more "
        "than 45773312 fit in memory (at most --batch 10)\n"
    )
