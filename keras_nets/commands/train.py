"""`keras-nets train` (not written yet)."""


def add_parser(subparsers):
    parser = subparsers.add_parser("train", help="(not written yet)")
    parser.set_defaults(run=run)


def run(args):
    raise SystemExit("keras-nets train is not written yet")
