"""`keras-nets` command line: `predict`, `train` and `weights`, one module each in commands/."""

import argparse
import importlib
import os
import sys

# TensorFlow's C++ info lines are noise in a command's output; users can still set it themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SUBCOMMANDS = ("predict", "train", "weights")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-nets", description="Classic ImageNet CNNs in Keras 3: predict, train, weights."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        # Each command module registers its arguments and sets `run` as the parser's default.
        importlib.import_module(f"keras_nets.commands.{name}").add_parser(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
