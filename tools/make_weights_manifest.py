"""Regenerate weights_manifest.json from the installed Keras 3 and keras-applications 1.0.8 sources.

Every file name, URL and md5 in the manifest is read from the reference sources, never typed by
hand: for each model variant, the `if weights == "imagenet":` block of the reference builder is run
with a recorder in place of `get_file`, which captures the (file name, URL, hash) it would download.

URL order per file: the original release (fchollet/deep-learning-models, the keras-applications
DenseNet, ResNet or MobileNetV2 release, as keras-applications 1.0.8 names it) first, then the
keras-applications storage mirror that Keras 3 downloads from, when Keras 3 publishes the same file
(same name, same hash). The Keras 3 ResNet50 file is a different file (its own hash, the Keras 2.2
layer names), so `resnet50` keeps only the original v0.2 file; ResNet-101/152 and the ResNetV2s
are the same files in both (keras-applications' resnet_common, Keras 3's resnet).

Needs keras and keras-applications==1.0.8 installed (the `test` extra); neither is imported, their
sources are only read. Usage: `python tools/make_weights_manifest.py [--check]`.
"""

import argparse
import ast
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import re
import sys

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "weights_manifest.json"

sys.path.insert(0, str(OUTPUT.parent))  # the keras_nets of this checkout, installed or not
from keras_nets.convnext import VARIANTS as CONVNEXT_VARIANTS  # noqa: E402
from keras_nets.densenet import BLOCKS as DENSENET_BLOCKS  # noqa: E402
from keras_nets.efficientnet import SCALING as EFFICIENTNET_SCALING  # noqa: E402
from keras_nets.efficientnet_v2 import SCALING as EFFICIENTNET_V2_SCALING  # noqa: E402
from keras_nets.mobilenet import PUBLISHED_ALPHAS as MOBILENET_ALPHAS  # noqa: E402
from keras_nets.mobilenet import PUBLISHED_SIZES as MOBILENET_ROWS  # noqa: E402
from keras_nets.nasnet import CELLS as NASNET_CELLS  # noqa: E402
from keras_nets.resnet import BLOCKS as RESNET_BLOCKS  # noqa: E402
from keras_nets.resnet_v2 import BLOCKS as RESNET_V2_BLOCKS  # noqa: E402


def source_dirs():
    """(Keras 3 applications dir, keras_applications dir), found without importing either."""
    keras_dir = pathlib.Path(importlib.util.find_spec("keras").origin).parent
    keras_applications_dir = pathlib.Path(
        importlib.util.find_spec("keras_applications").origin
    ).parent
    return keras_dir / "src" / "applications", keras_applications_dir


# Where Keras 3 builds the same model in a module of another name: (module, builder variables).
KERAS3_SOURCES = {"resnet50": ("resnet", {"weights_name": "resnet50"})}
# The ResNets and ResNetV2s: keras-applications 1.0.8's resnet_common and Keras 3's resnet name
# their files alike ("resnet101", "resnet50v2"): manifest key -> that weights name.
RESNET_WEIGHTS_NAMES = {key: key.replace("_", "") for key in [*RESNET_BLOCKS, *RESNET_V2_BLOCKS]}
KERAS3_SOURCES.update(
    (key, ("resnet", {"weights_name": name})) for key, name in RESNET_WEIGHTS_NAMES.items()
)


# The default size by which keras-applications 1.0.8's and Keras 3's NASNet pick their file.
NASNET_DEFAULT_SIZES = {"nasnet_mobile": 224, "nasnet_large": 331}


def variants(keras_applications_source):
    """(manifest key, source module name, the builder variables that select its weights file)."""
    for key in ("xception", "inception_v3", "resnet50", "vgg16", "vgg19", "inception_resnet_v2"):
        yield key, key, {}
    for key, blocks in DENSENET_BLOCKS.items():
        yield key, "densenet", {"blocks": list(blocks)}
    for key, name in RESNET_WEIGHTS_NAMES.items():
        yield key, "resnet_common", {"model_name": name}
    for alpha, rows in mobilenet_v2_checkpoints(keras_applications_source):
        yield f"mobilenet_v2_{alpha}_{rows}", "mobilenet_v2", {"alpha": alpha, "rows": rows}
    for alpha in MOBILENET_ALPHAS:
        for rows in MOBILENET_ROWS:
            yield f"mobilenet_{float(alpha)}_{rows}", "mobilenet", {"alpha": alpha, "rows": rows}
    for key in NASNET_CELLS:  # both references pick the file by the default size, 224 or 331
        yield key, "nasnet", {"default_size": NASNET_DEFAULT_SIZES[key]}


def mobilenet_v2_checkpoints(keras_applications_source):
    """(alpha, rows) of the 22 published MobileNetV2 files: the checkpoint table of the reference's
    docstring. Alpha 1.3 and 1.4 exist at 224 only, though the builder accepts any of the sizes."""
    text = (keras_applications_source / "mobilenet_v2.py").read_text()
    table = re.findall(r"\| \[mobilenet_v2_([\d.]+)_(\d+)\]", text)
    return sorted((float(alpha), int(rows)) for alpha, rows in table)


def mobilenet_v3_variants(keras_source):
    """The MobileNetV3 variants are the keys of WEIGHTS_HASHES in Keras 3's mobilenet_v3.py."""
    hashes = module_constants(keras_source / "mobilenet_v3.py")["WEIGHTS_HASHES"]
    for name in hashes:
        model_type, minimalistic, alpha = re.fullmatch(
            r"(small|large)(_minimalistic)?_224_([\d.]+)_float", name
        ).groups()
        key = f"mobilenet_v3_{model_type}{minimalistic or ''}_{alpha}"
        yield (
            key,
            "mobilenet_v3",
            {"model_type": model_type, "minimalistic": bool(minimalistic), "alpha": float(alpha)},
        )


def efficientnet_variants():
    """EfficientNet-B0 ... B7, Keras 3 only (keras-applications 1.0.8 has no EfficientNet): its
    builder names the file after the model's default name, "efficientnetb0", and takes the hashes
    of WEIGHTS_HASHES["b0"]."""
    for key in EFFICIENTNET_SCALING:
        keras_name = key.replace("_", "")
        yield key, "efficientnet", {"name": keras_name, "weights_name": keras_name[-2:]}


def efficientnet_v2_variants():
    """EfficientNetV2-B0 ... L, Keras 3 only: its builder names the file after the model's
    default name, "efficientnetv2-b0" ... "efficientnetv2-l", and takes the hashes of
    WEIGHTS_HASHES["b0"] ... ["-l"] (the B variants' key is "b0", the others' "-s")."""
    for key in EFFICIENTNET_V2_SCALING:
        variant = key.rsplit("_", 1)[1]  # "b0", "s"
        weights_name = variant if variant.startswith("b") else f"-{variant}"
        yield (
            key,
            "efficientnet_v2",
            {"name": f"efficientnetv2-{variant}", "weights_name": weights_name},
        )


def convnext_variants():
    """ConvNeXt-Tiny ... XLarge, Keras 3 only: its builder names the file after the model's
    default name, "convnext_tiny", and gives sha256s (WEIGHTS_HASHES["convnext_tiny"]), not md5s."""
    for key in CONVNEXT_VARIANTS:
        yield key, "convnext", {"name": key, "weights_name": key}


def module_constants(path):
    """The module's UPPER_CASE constants (URL bases, hash tables), evaluated in source order."""
    namespace = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and all(
            isinstance(t, ast.Name) and t.id.isupper() for t in node.targets
        ):
            exec(compile(ast.Module([node], []), str(path), "exec"), namespace)
    return {name: value for name, value in namespace.items() if name.isupper()}


def imagenet_block(path):
    """The builder's `if weights == "imagenet":` statement that picks and fetches the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.If) and ast.unparse(node.test).startswith("weights == 'imagenet'"):
            calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
            if any(getattr(call.func, "attr", None) == "get_file" for call in calls):
                return ast.Module([node], [])
    return None


class _Recorder:
    """Stands in for the reference's file_utils/keras_utils, model and backend."""

    def __init__(self):
        self.requests = []

    def get_file(self, fname=None, origin=None, **kwargs):
        file_hash = kwargs.get("file_hash") or kwargs.get("md5_hash")
        # get_file's rule: a 64-digit hash is a sha256 (Keras 3's ConvNeXt), else an md5
        algorithm = "sha256" if file_hash and len(file_hash) == 64 else "md5"
        self.requests.append({"file": fname, "url": origin, algorithm: file_hash})

    def load_weights(self, path):
        pass

    def backend(self):
        return "tensorflow"


def requested_file(path, variables, include_top):
    """{"file", "url", "md5"} the reference at `path` downloads for these variables, or None."""
    block = imagenet_block(path) if path.exists() else None
    if block is None:
        return None
    recorder = _Recorder()
    namespace = {
        **module_constants(path),
        **variables,
        "weights": "imagenet",
        "include_top": include_top,
        "file_utils": recorder,
        "keras_utils": recorder,
        "model": recorder,
        "backend": recorder,
    }
    exec(compile(block, str(path), "exec"), namespace)
    return recorder.requests[0] if recorder.requests else None


def manifest_entry(original, keras3):
    """One manifest entry: the original URL first, then the Keras 3 mirror of the same file."""
    first = original or keras3
    urls = [first["url"]]
    if keras3 and keras3 is not first and _identity(keras3) == _identity(first):
        urls.append(keras3["url"])
    entry = {"file": first["file"], "urls": urls, "md5": first.get("md5")}
    if first.get("sha256"):  # published as a sha256 only: the manifest's md5 is null
        entry["sha256"] = first["sha256"]
    if keras3 and keras3["file"] == first["file"] and keras3.get("md5") != first.get("md5"):
        # keras.applications caches a different file under this name in the same Keras cache; a
        # shared name would make each library delete and re-download the other's file forever.
        stem, extension = os.path.splitext(first["file"])
        entry["cache_file"] = f"{stem}_{first['md5'][:8]}{extension}"
    return entry


def _identity(request):
    return request["file"], request.get("md5"), request.get("sha256")


def build_manifest():
    keras_source, keras_applications_source = source_dirs()
    models = {}
    all_variants = [
        *variants(keras_applications_source),
        *mobilenet_v3_variants(keras_source),
        *efficientnet_variants(),
        *efficientnet_v2_variants(),
        *convnext_variants(),
    ]
    for key, module, variables in all_variants:
        entries = {}
        for part, include_top in (("top", True), ("notop", False)):
            original = requested_file(
                keras_applications_source / f"{module}.py", variables, include_top
            )
            keras3_module, keras3_variables = KERAS3_SOURCES.get(key, (module, variables))
            keras3 = requested_file(
                keras_source / f"{keras3_module}.py", keras3_variables, include_top
            )
            if original is None and keras3 is None:
                raise SystemExit(f"no reference source names the weights of {key} ({part})")
            entries[part] = manifest_entry(original, keras3)
        models[key] = entries
    return {
        "generated_by": "tools/make_weights_manifest.py",
        "generated_from": {
            "keras": importlib.metadata.version("keras"),
            "keras-applications": importlib.metadata.version("keras-applications"),
        },
        "models": models,
    }


def render(manifest):
    return json.dumps(manifest, indent=2) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = parser.parse_args(argv)
    text = render(build_manifest())
    if args.check:
        if OUTPUT.read_text() != text:
            print(
                f"{OUTPUT} is out of date: run python tools/make_weights_manifest.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT} ({len(json.loads(text)['models'])} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
