"""`keras-nets cache`: the compiled-model cache, where `--fast` keeps its converted models.

    keras-nets cache list     # each entry: kind, size, last used, model, precision
    keras-nets cache clear    # removes them all (nothing else in the folder is touched)

The cache is `$KERAS_HOME/keras_nets/compiled` (`keras_nets.inference.cache`): an entry that fails
its sha256 check is rebuilt on its own, so clearing is for disk space, never for correctness.
"""

import time

from keras_nets.commands._common import fail, human_size
from keras_nets.inference import cache


def add_parser(subparsers):
    where = f"$KERAS_HOME/keras_nets/compiled, now {cache.cache_dir()}"
    what = "ONNX models converted (and quantized) by --fast and compile_for_inference"
    summary = "list or clear the compiled-model cache that --fast keeps its converted models in"
    parser = subparsers.add_parser(
        "cache", help=summary, description=f"The compiled-model cache ({where}): {what}."
    )
    parser.add_argument(
        "action",
        choices=("list", "clear"),
        help="list: each entry, its size and when it was last used; clear: remove every entry",
    )
    parser.set_defaults(run=run)


def run(args):
    try:
        return run_list() if args.action == "list" else run_clear()
    except OSError as error:
        return fail("cache", f"{error.filename}: {error.strerror}" if error.filename else error)


def run_list():
    rows = [("KIND", "SIZE", "LAST USED", "MODEL", "PRECISION", "KEY")]
    for entry in cache.entries():
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry["last_used"]))
        precision = entry.get("precision") or "-"
        model = entry.get("model") or "-"
        rows.append(
            (entry["kind"], human_size(entry["bytes"]), used, model, precision, entry["key"][:12])
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    models = [entry for entry in cache.entries() if entry["kind"] == "model"]
    total = sum(entry["bytes"] for entry in models)
    count = f"{len(models)} model" + ("" if len(models) == 1 else "s")
    print(f"{count}, {human_size(total)}, in {cache.cache_dir()}")
    return 0


def run_clear():
    count, freed = cache.clear()
    print(f"{count} files removed, {human_size(freed)} freed, from {cache.cache_dir()}")
    return 0
