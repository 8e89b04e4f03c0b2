"""`keras-nets weights` (not written yet)."""


def add_parser(subparsers):
    parser = subparsers.add_parser("weights", help="(not written yet)")
    parser.set_defaults(run=run)


def run(args):
    raise SystemExit("keras-nets weights is not written yet")
