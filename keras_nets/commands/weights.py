"""`keras-nets weights`: list, pre-fetch, verify and locate the published weights files.

    keras-nets weights list [KEY...] [--cached]
    keras-nets weights download KEY... | --all  [--notop]
    keras-nets weights verify [KEY...]
    keras-nets weights path KEY [--notop]

KEY is a registry name, for the weights `create_model(NAME, weights="imagenet")` loads (its
default variant: "mobilenet_v2" is "mobilenet_v2_1.0_224"), or a manifest key of one variant,
"mobilenet_v2_0.35_96", ... (`list` shows them all); with --all, download and verify take every
variant of the NAMEs given.
"""

import os
import sys

from keras_nets.commands._common import fail, human_size
from keras_nets.weights import cache, download, manifest


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "weights",
        help="list, download, verify and locate the published ImageNet weights files",
        description="The published ImageNet weights files and the local cache "
        f"($KERAS_HOME/models, now {cache.cache_dir()}).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="every model variant, its file, cached or not, size")
    listing.add_argument("keys", nargs="*", metavar="KEY", help="only these keys (or key prefixes)")
    listing.add_argument("--cached", action="store_true", help="only files in the cache")
    listing.set_defaults(action_run=run_list)

    download = actions.add_parser("download", help="pre-fetch files for machines that go offline")
    download.add_argument("keys", nargs="*", metavar="KEY")
    download.add_argument(
        "--all", action="store_true", help="every variant of the KEYs given, or of every model"
    )
    download.add_argument("--notop", action="store_true", help="the files without the classifier")
    download.set_defaults(action_run=run_download)

    verify = actions.add_parser(
        "verify", help="check the cached files: md5 (where published) and the sha256 recorded"
    )
    verify.add_argument("keys", nargs="*", metavar="KEY", help="only these keys (default: all)")
    verify.add_argument("--all", action="store_true", help="every variant of the KEYs given")
    verify.set_defaults(action_run=run_verify)

    path = actions.add_parser("path", help="where a file is cached, or where to copy it by hand")
    path.add_argument("key", metavar="KEY")
    path.add_argument("--notop", action="store_true", help="the file without the classifier")
    path.set_defaults(action_run=run_path)
    parser.set_defaults(run=run)


def run(args):
    try:
        return args.action_run(args)
    except ValueError as error:  # an unknown key, or a manifest that cannot be read
        return _fail(error)
    except OSError as error:  # an unreadable cache file, ...
        return _fail(f"{error.filename}: {error.strerror}" if error.filename else error)


def run_list(args):
    unknown = [k for k in args.keys if not any(key.startswith(k) for key in manifest.manifest())]
    if unknown:
        return _fail(f"list: no published key starts with {unknown[0]!r}")
    rows = [("KEY", "PART", "CACHED", "FILE")]
    for key, parts in manifest.manifest().items():
        if args.keys and not any(key.startswith(prefix) for prefix in args.keys):
            continue
        for part, entry in parts.items():
            path = cache.cached_file(entry)
            if os.path.exists(path):
                rows.append((key, part, human_size(os.path.getsize(path)), entry["file"]))
            elif not args.cached:
                rows.append((key, part, "-", entry["file"]))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    print(f"cache: {cache.cache_dir()}")
    return 0


def run_download(args):
    if not (args.all or args.keys):
        return _fail("download: give KEY... or --all")
    keys = chosen_keys(args) if args.keys else list(manifest.manifest())
    failed = 0
    for key in keys:
        try:
            print(download.fetch(key, include_top=not args.notop))
        except (ValueError, cache.WeightsDownloadError) as error:
            failed += 1
            print(f"keras-nets weights download {key}: {error}", file=sys.stderr)
    return 1 if failed else 0


def run_verify(args):
    keys = chosen_keys(args) if args.keys else list(manifest.manifest())
    entries = [
        (key, part, manifest.entry(key, part == "top")) for key in keys for part in ("top", "notop")
    ]
    bad = checked = 0
    for key, part, entry in entries:
        path = cache.cached_file(entry)
        if not os.path.lexists(path):
            continue
        checked += 1
        problem = cache.cached_problem(path, entry)
        published = manifest.published_hash(entry)
        how = published[0] if published else "HDF5 structure, no md5 published"
        download = f"`keras-nets weights download {key}{'' if part == 'top' else ' --notop'}`"
        if problem is None:
            print(f"ok   {path} ({how}; sha256 unchanged since cached)")
        elif problem.startswith(cache.CHANGED):
            bad += 1
            print(f"BAD  {path}: {problem}; delete it and run {download} to fetch it again")
        elif cache.downloaded_here(path):
            bad += 1
            print(f"BAD  {path}: {problem}; {download} replaces it (keras-nets downloaded it)")
        else:
            bad += 1
            print(
                f"BAD  {path}: {problem}; keras-nets did not download it, so it is left as it is: "
                f"move it away and run {download}"
            )
    print(f"{checked} cached files checked, {bad} bad, in {cache.cache_dir()}")
    return 1 if bad else 0


def run_path(args):
    entry = manifest.entry(args.key, include_top=not args.notop)
    path = cache.cached_file(entry)
    print(path)
    if not os.path.exists(path):
        print(
            "not cached yet: `keras-nets weights download` fetches it, or copy it there by hand "
            "from:\n  " + "\n  ".join(download.candidate_urls(entry)),
            file=sys.stderr,
        )
    return 0


def chosen_keys(args):
    """The KEYs given (a registry name stands for its default variant: `manifest.entry` and
    `fetch` resolve it), or with --all every variant under each; a ValueError for a key with none."""
    if not args.all:
        return list(args.keys)
    keys = []
    for key in args.keys:
        found = manifest.variants(key)
        if not found:
            manifest.check_published(key, model=manifest.model_of(key))
        keys += [k for k in found if k not in keys]
    return keys


def _fail(message):
    return fail("weights", message)
