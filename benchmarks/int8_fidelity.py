"""int8 fidelity: how closely the int8 fast path follows the float32 Keras model, on held-out images.

    python benchmarks/int8_fidelity.py --proxy --size 96                # the issue's proxy, below
    python benchmarks/int8_fidelity.py --trained run/model.keras --data DIR --held-out 500
    python benchmarks/int8_fidelity.py --generated mobilenet_v2 resnet50 --size 96

For each model: top-1 agreement of int8 with float32, the relative RMS error of the logits
(RMS of int8 - float32 over RMS of float32, before any softmax), and how stable float32 itself
is: its top-1 agreement with itself when every held-out image gets Gaussian noise of 0.1% of the
images' standard deviation (a smaller change than int8's rounding). A network that already
changes its answer under that noise cannot agree with its int8 form either, whatever the
quantizer. Calibration and held-out images never overlap.

--proxy is the stand-in for the published weights, which cannot be downloaded here: it generates
a 3-class image dataset, fine-tunes ResNet50 and MobileNetV2 (or --models) on it with `keras-nets
train` from a base whose BatchNorm statistics were set from images, twice (the whole network,
`--no-freeze`; and only a head on the frozen random base, `--freeze`), and measures them and the generated
ImageNet-like weights the tests use (tests/informative_weights.py) on 500 held-out images. The real measurement, on ImageNet's validation set with the published
weights, is `--imagenet VAL_DIR --models resnet50 mobilenet_v2` (class folders, as `keras-nets
evaluate` reads them).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import keras
import numpy as np

import keras_nets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling modules
from machine import cpu_description

from keras_nets.image_files import read_image, walk_images

CALIBRATION = 128
NOISE = 1e-3  # the float32 stability check's noise, relative to the images' standard deviation


def outputs(model, images):
    return np.concatenate(
        [
            keras.ops.convert_to_numpy(model(images[i : i + 32], training=False))
            for i in range(0, len(images), 32)
        ]
    )


def fidelity(model, calibration, held_out, transform=None):
    """{"top1_agreement", "relative_logit_error"} of `model`'s int8 fast path on `held_out`.

    `model` ends in a Dense layer; its activation is switched off (on this copy in memory) so that
    logits are compared. `calibration` and `held_out` are arrays as the model takes them."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Dense):
        last.activation = keras.activations.linear
    fast = keras_nets.compile_for_inference(
        model, precision="int8", calibration=calibration, transform=transform
    )
    expected = outputs(model, held_out)
    got = fast.predict(held_out, batch_size=8)
    noise = np.random.default_rng(0).normal(0, NOISE * held_out.std(), held_out.shape)
    noisy = outputs(model, (held_out + noise).astype("float32"))
    return {
        "top1_agreement": float(np.mean(got.argmax(1) == expected.argmax(1))),
        "relative_logit_error": float(
            np.sqrt(np.mean((got - expected) ** 2) / np.mean(expected**2))
        ),
        "float32_noise_agreement": float(np.mean(noisy.argmax(1) == expected.argmax(1))),
        "held_out": len(held_out),
    }


def folder_images(folder, transform, skip, count):
    """`count` images of `folder` after the first `skip` (walked in order), through `transform`."""
    paths = list(walk_images(folder))[skip : skip + count]
    return np.asarray(transform.preprocess(np.stack([transform(read_image(p)) for p in paths])))


def shuffled_folder(folder, workdir, seed=0):
    """A folder in `workdir` of links to `folder`'s images in a seeded random order (so that the
    first images of a class-sorted folder are not all of one class)."""
    paths = list(walk_images(folder))
    order = np.random.default_rng(seed).permutation(len(paths))
    tmp = tempfile.mkdtemp(prefix="shuffled-", dir=workdir)
    for rank, index in enumerate(order):
        os.symlink(
            os.path.abspath(paths[index]), os.path.join(tmp, f"{rank:07d}{paths[index].suffix}")
        )
    return tmp


def trained(path, data, held_out, workdir):
    """A `keras-nets train` classifier, calibrated on and measured against `data`'s images."""
    from keras_nets import finetune
    from keras_nets.preprocessing import trained_transform

    model, _ = finetune.load_classifier(path)
    transform = trained_transform(model.input_shape[1])
    images = folder_images(shuffled_folder(data, workdir), transform, 0, CALIBRATION + held_out)
    row = fidelity(model, images[:CALIBRATION], images[CALIBRATION:])
    history = os.path.join(os.path.dirname(path), "history.json")
    if os.path.isfile(history):
        with open(history) as f:
            row["validation_accuracy"] = json.load(f)["val_accuracy"][-1]
    return row


def imagenet(name, val_dir, held_out, workdir):
    """A registry model with its published weights, on ImageNet validation images."""
    transform = keras_nets.eval_transform(name)
    model = keras_nets.create_model(name, weights="imagenet", classifier_activation=None)
    images = folder_images(shuffled_folder(val_dir, workdir), transform, 0, CALIBRATION + held_out)
    return fidelity(model, images[:CALIBRATION], images[CALIBRATION:])


def generated(name, size, held_out):
    """The generated ImageNet-like weights of the tests, on photo-like generated images."""
    from informative_weights import informative_model, random_images

    options = {"alpha": 0.35} if name == "mobilenet_v2" else {}
    model = informative_model(name, size, classifier_activation=None, **options)
    preprocess = keras_nets.get_config(name).preprocess_input
    calibration = preprocess(random_images(CALIBRATION, size, seed=1))
    return fidelity(model, calibration, preprocess(random_images(held_out, size, seed=2)))


def proxy(size, epochs, held_out, workdir, train_images=200, models=("resnet50", "mobilenet_v2")):
    """Fine-tunes `models` (MobileNetV2 at alpha 0.35) on a generated 3-class dataset with
    `keras-nets train` (`train_images` per class), the whole network and then only a head on the
    frozen base, and measures them, and the generated weights, on `held_out` images of the same
    kind."""
    from generated_data import calibrated_base_weights, make_dataset

    classes = ("blue", "red", "green")
    data = make_dataset(
        os.path.join(workdir, "data"), classes, train=train_images, validation=8, size=size
    )
    unseen = make_dataset(
        os.path.join(workdir, "unseen"),
        classes,
        train=0,
        validation=(CALIBRATION + held_out) // len(classes) + 1,
        size=size,
        seed=1,
    )
    rows = {}
    for name in models:
        alpha = ["--alpha", "0.35"] if name == "mobilenet_v2" else []
        base = calibrated_base_weights(
            os.path.join(workdir, f"{name}_notop.weights.h5"),
            name,
            size,
            **({"alpha": 0.35} if alpha else {}),
        )
        for freeze, what in (("--no-freeze", "whole network"), ("--freeze", "head on frozen base")):
            run = os.path.join(workdir, f"{name}{freeze}")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "keras_nets",
                    "train",
                    data,
                    "--model",
                    name,
                    "--classes",
                    "3",
                    "--output",
                    run,
                    "--size",
                    str(size),
                    "--epochs",
                    str(epochs),
                    "--weights",
                    base,
                    freeze,
                    *alpha,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            rows[f"{name} fine-tuned, {what} ({size} px)"] = trained(
                os.path.join(run, "model.keras"),
                os.path.join(unseen, "validation"),
                held_out,
                workdir,
            )
    for name in models:
        rows[f"{name} generated ImageNet-like ({size} px)"] = generated(name, size, held_out)
    return rows


def table(rows):
    lines = [
        "| model | held-out images | float32 validation accuracy | int8 top-1 agreement with "
        "float32 | relative logit error | float32 top-1 agreement under 0.1% input noise |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        accuracy = row.get("validation_accuracy")
        lines.append(
            f"| {name} | {row['held_out']} | {'-' if accuracy is None else f'{accuracy:.1%}'} | "
            f"{row['top1_agreement']:.1%} | {row['relative_logit_error']:.3f} | "
            f"{row['float32_noise_agreement']:.1%} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--proxy", action="store_true", help="the issue's proxy (see above)")
    parser.add_argument("--trained", metavar="MODEL.keras", help="a keras-nets train classifier")
    parser.add_argument("--data", metavar="DIR", help="with --trained: images to measure on")
    parser.add_argument(
        "--generated",
        nargs="+",
        default=[],
        metavar="NAME",
        help="registry models with the tests' generated weights",
    )
    parser.add_argument(
        "--imagenet",
        metavar="VAL_DIR",
        help="ImageNet validation class folders: published weights of --models",
    )
    parser.add_argument("--models", nargs="+", default=["resnet50", "mobilenet_v2"])
    parser.add_argument("--size", type=int, default=96, help="input size for --proxy/--generated")
    parser.add_argument("--epochs", type=int, default=5, help="--proxy's training epochs (5)")
    parser.add_argument(
        "--train-images", type=int, default=200, help="--proxy's training images per class (200)"
    )
    parser.add_argument("--held-out", type=int, default=500, help="held-out images (500)")
    args = parser.parse_args(argv)
    if args.trained and not args.data:
        parser.error("--trained needs --data DIR")
    rows = {}
    with tempfile.TemporaryDirectory(prefix="int8-fidelity-") as workdir:
        if args.proxy:
            rows.update(
                proxy(
                    args.size, args.epochs, args.held_out, workdir, args.train_images, args.models
                )
            )
        if args.trained:
            rows[args.trained] = trained(args.trained, args.data, args.held_out, workdir)
        for name in args.generated:
            rows[f"{name} generated ({args.size} px)"] = generated(name, args.size, args.held_out)
        if args.imagenet:
            for name in args.models:
                rows[f"{name} published, ImageNet"] = imagenet(
                    name, args.imagenet, args.held_out, workdir
                )
    print(f"CPU: {cpu_description()}\n")  # int8 kernels differ with VNNI
    print(table(rows))


if __name__ == "__main__":
    main()
