"""One photo, from the command line to the answer: wall time and peak memory of a whole process.

    python benchmarks/startup.py                                    # docs/benchmarks.md's table
    python benchmarks/startup.py --models mobilenet_v2 --repeats 5

For each model, each row is a fresh process predicting keras_nets/data/chelsea.jpg:

  keras-nets predict            Keras on the default backend (TensorFlow): build, load, predict
  --fast, cold cache            the same plus the ONNX conversion, stored in an empty cache
  --fast, 2nd run               the first warm start: the compiled-model cache's ONNX model on
                                ONNX Runtime, without importing Keras or TensorFlow; it also
                                stores the graph as ONNX Runtime optimized it for this CPU
  --fast, warm cache            every run after: that optimized graph
  keras.applications            for comparison: `python -c` building keras.applications' twin
                                with the same weights, preprocess_input, predict, decode

Weights: the published files cannot be downloaded here, so each model's weights are written once
(random values, the published layout) and given as `--weights FILE`, which costs what loading
the published file costs. Peak memory is the child's ru_maxrss (os.wait4). Warm rows repeat
`--repeats` times (the median is shown); the others run once.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling modules

from machine import cpu_description, markdown_table

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "keras_nets", "data")
PHOTO = os.path.join(DATA, "chelsea.jpg")
CLASS_INDEX = os.path.join(DATA, "imagenet_class_index.json")
# model name -> keras.applications builder and preprocessing module
KERAS_TWINS = {
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2"),
    "xception": ("Xception", "xception"),
    "resnet50": ("ResNet50", "resnet50"),
    "inception_v3": ("InceptionV3", "inception_v3"),
}
KERAS_APPLICATIONS = """
import sys
import keras, numpy as np
from keras.applications import {module} as m
from keras.utils import load_img, img_to_array
model = keras.applications.{builder}(weights=sys.argv[1])
size = model.input_shape[1:3]
x = m.preprocess_input(img_to_array(load_img(sys.argv[2], target_size=size))[None])
print(m.decode_predictions(model.predict(x, verbose=0), top=1))
"""


def main(argv=None):
    args = parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, KERAS_HOME=os.path.join(scratch, "keras_home"))
        # keras.applications' decode_predictions downloads the class index: the packaged copy
        # (the same file) goes where Keras looks for it first.
        os.makedirs(os.path.join(env["KERAS_HOME"], "models"))
        shutil.copy(CLASS_INDEX, os.path.join(env["KERAS_HOME"], "models"))
        for name in args.models:
            keras_nets_weights, keras_weights = write_weights(name, scratch)
            predict = [sys.executable, "-m", "keras_nets", "predict", PHOTO, "--model", name]
            predict += ["--weights", keras_nets_weights, "--top", "1"]
            rows.append((name, "keras-nets predict", *timed(predict, env)))
            rows.append((name, "--fast, cold cache", *timed([*predict, "--fast"], env)))
            second = timed([*predict, "--fast"], env)
            rows.append((name, "--fast, 2nd run (optimizes for this CPU)", *second))
            warm = [timed([*predict, "--fast"], env) for _ in range(args.repeats)]
            rows.append((name, "--fast, warm cache", *median_row(warm)))
            builder, module = KERAS_TWINS[name]
            script = KERAS_APPLICATIONS.format(builder=builder, module=module)
            command = [sys.executable, "-c", script, keras_weights, PHOTO]
            rows.append((name, "keras.applications", *timed(command, env)))
    print(table(rows, args.repeats))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2", "xception"])
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per model (median)")
    return parser.parse_args(argv)


def write_weights(name, folder):
    """(keras-nets' weights file, keras.applications' weights file) of one random set of values:
    the keras.applications twin's values, also loaded into the keras-nets model, in a child
    process (this one stays free of Keras)."""
    ours = os.path.join(folder, f"{name}.weights.h5")
    theirs = os.path.join(folder, f"{name}.keras_applications.weights.h5")
    builder, _ = KERAS_TWINS[name]
    script = (
        "import sys, keras, keras_nets\n"
        f"twin = keras.applications.{builder}(weights=None)\n"
        "twin.save_weights(sys.argv[2])\n"
        f"model = keras_nets.create_model({name!r}, weights=None)\n"
        "model.set_weights(twin.get_weights())\n"
        "model.save_weights(sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", script, ours, theirs], check=True)
    return ours, theirs


def timed(command, env):
    """(wall seconds, peak resident MB) of running `command` to its end."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(
            f"{' '.join(command[:6])} failed: {process.stderr.read().decode()[-2000:]}"
        )
    return wall, usage.ru_maxrss / 1024


def median_row(runs):
    return statistics.median(w for w, _ in runs), max(m for _, m in runs)


def table(rows, repeats):
    import keras
    import onnxruntime
    import PIL

    cells = [[m, run, f"{wall:.2f}", f"{mb:.0f}"] for m, run, wall, mb in rows]
    lines = [markdown_table(["model", "run", "wall (s)", "peak memory (MB)"], cells, 2), ""]
    lines.append(f"CPU: {cpu_description()}; {os.cpu_count()} cores")
    lines.append(
        f"Python {sys.version.split()[0]}, Keras {keras.__version__} "
        f"({keras.backend.backend()}), ONNX Runtime {onnxruntime.__version__}, "
        f"Pillow {PIL.__version__}; warm rows: median of {repeats} runs"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
