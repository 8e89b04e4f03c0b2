"""`keras-nets predict` (not written yet)."""


def add_parser(subparsers):
    parser = subparsers.add_parser("predict", help="(not written yet)")
    parser.set_defaults(run=run)


def run(args):
    raise SystemExit("keras-nets predict is not written yet")
