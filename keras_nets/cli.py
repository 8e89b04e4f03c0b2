"""`keras-nets` command line: one module per command in keras_nets/commands/, found there.

The contract of a command module `keras_nets/commands/NAME.py` (the command is `keras-nets NAME`):

- `add_parser(subparsers)` adds the command's parser (`subparsers.add_parser(NAME, ...)`), its
  arguments, and `parser.set_defaults(run=run)`;
- `run(args) -> int` does the work through library functions (the command itself only reads
  arguments and prints) and returns the exit status: 0 done, 1 some inputs failed (the others were
  processed), 2 bad arguments or input (nothing done). Errors are one line on stderr, printed with
  `keras_nets.commands._common.fail`; shared argument types live there too.

Adding a command is adding that module: modules whose names start with "_" are not commands.
Ctrl-C anywhere ends the command with status 130 and one line, "interrupted"; SIGTERM (`kill`,
docker stop) likewise with 143 and "terminated", after the same cleanup (temporary files removed:
`keras_nets.safe_files.terminate_as_interrupt`).
"""

import argparse
import importlib
import os
import pkgutil
import sys

# TensorFlow's C++ info lines are noise in a command's output; users can still set it themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

INTERRUPTED = 130


def command_modules():
    """The command modules in keras_nets.commands, by command name, in alphabetical order."""
    from keras_nets import commands

    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))
    return {name: importlib.import_module(f"keras_nets.commands.{name}") for name in names}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-nets", description="Classic ImageNet CNNs in Keras 3: predict, train, weights."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules().values():
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    from keras_nets.commands._common import TERMINATED
    from keras_nets.safe_files import Terminated, terminate_as_interrupt

    try:
        with terminate_as_interrupt():  # SIGTERM cleans up as Ctrl-C does
            args = build_parser().parse_args(argv)
            return args.run(args) or 0
    except Terminated:
        print("terminated", file=sys.stderr)
        return TERMINATED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
