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

Commands start quietly: TensorFlow's, absl's, oneDNN's and CUDA's start-up lines are kept off
stderr (`keras_nets.commands._quiet`) unless `--verbose` or KERAS_NETS_VERBOSE=1 asks for them.
"""

import argparse
import importlib
import os
import pkgutil
import sys

INTERRUPTED = 130


def command_modules():
    """The command modules in keras_nets.commands, by command name, in alphabetical order."""
    from keras_nets import commands

    names = sorted(
        m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")
    )
    return {name: importlib.import_module(f"keras_nets.commands.{name}") for name in names}


class OneLineErrors(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other error of keras-nets."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the arguments)\n")


def build_parser():
    import keras_nets
    from keras_nets.commands import _quiet

    modules = command_modules()
    parser = OneLineErrors(
        prog="keras-nets",
        description=f"Classic ImageNet CNNs in Keras 3: {', '.join(modules)}. "
        "`keras-nets COMMAND --help` describes each.",
    )
    version = f"keras-nets {keras_nets.__version__}"
    parser.add_argument("--version", action="version", version=version)
    verbose_help = (
        "also show TensorFlow's, absl's, oneDNN's and CUDA's start-up lines on stderr "
        f"(or {_quiet.VERBOSE_ENV}=1)"
    )
    parser.add_argument("--verbose", action="store_true", help=verbose_help)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in modules.items():
        module.add_parser(subparsers)
        # after the command too; SUPPRESS keeps a `keras-nets --verbose COMMAND` given before it
        subparsers.choices[name].add_argument(
            "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help
        )
    return parser


# Keras' backends (KERAS_BACKEND) and the package each needs, with how to install it.
BACKEND_PACKAGES = {
    "tensorflow": ("tensorflow", "pip install tensorflow"),
    "jax": ("jax", 'pip install "jax[cpu]"'),
    "torch": ("torch", "pip install torch --index-url https://download.pytorch.org/whl/cpu"),
    "numpy": ("numpy", "pip install numpy"),
    "openvino": ("openvino", "pip install openvino"),
}


def backend_problem():
    """None, or the error line for a KERAS_BACKEND that Keras cannot import: an unknown name, or a
    backend whose package is not installed (Keras would fail with a traceback on first import)."""
    import importlib.util

    name = os.environ.get("KERAS_BACKEND")
    if name is None:
        return None
    if name not in BACKEND_PACKAGES:
        return f"KERAS_BACKEND={name}: expected one of {', '.join(BACKEND_PACKAGES)}"
    package, install = BACKEND_PACKAGES[name]
    try:
        installed = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        installed = False
    if not installed:
        return f"KERAS_BACKEND={name}: the {package} package is not installed ({install})"
    return None


def main(argv=None):
    from keras_nets.commands import _quiet
    from keras_nets.commands._common import TERMINATED
    from keras_nets.core.safe_files import Terminated, terminate_as_interrupt

    try:
        with terminate_as_interrupt():  # SIGTERM cleans up as Ctrl-C does
            args = build_parser().parse_args(argv)
            problem = backend_problem()
            if problem:
                print(f"keras-nets {args.command}: error: {problem}", file=sys.stderr)
                return 2
            if args.verbose or _quiet.verbose_from_environment():
                return args.run(args) or 0
            _quiet.quiet_environment()
            with _quiet.native_stderr_filtered():
                return args.run(args) or 0
    except Terminated:
        print("terminated", file=sys.stderr)
        return TERMINATED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
