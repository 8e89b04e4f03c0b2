"""Images per second on this CPU: keras.applications, keras_nets and its fast path, side by side.

    python benchmarks/throughput.py                       # the four seed models, batch 1 and 8
    python benchmarks/throughput.py --models mobilenet_v2 --repeats 5 --json out.json --plot out.png
    python benchmarks/throughput.py --models mobilenet_v2 --alpha 0.35 --size 96 --batches 1 --repeats 1

For every model and batch size, all runtimes are set up first and then timed in turns, one call
each per round, so that a slow spell of the machine hits them all alike; a row gives the median
of the rounds. Runtimes:
  keras.applications .predict   the keras.applications twin, `model.predict(x)`
  keras_nets .predict           our builder, `model.predict(x)`, on this process's Keras backend
  fast (<runtime>)              `keras_nets.compile_for_inference(ours, runtime).predict(x)`,
                                for each installed runtime
  fast int8 (<runtime>)         with --int8: the same, `precision="int8"`, calibrated on 64
                                random images (speed only: for fidelity, see --fidelity)
  plain onnxruntime / openvino  the keras.applications model exported with Keras' own
                                `model.export(format="onnx")`, run with default settings
                                (n/a where that export takes more inputs than the images:
                                EfficientNet's, EfficientNetV2's and ConvNeXt's also take
                                their in-graph Normalization's mean and variance)
  keras_nets .predict (<backend>)
                                our builder's `model.predict(x)` on another Keras backend (JAX,
                                PyTorch: every one installed, or --backends), same weights, in
                                a child process per backend that waits, idle, for each call
Weights are random; each model loads them back from a legacy-format .h5 file (the format of the
published weights), which is timed. The setup
table gives build and load times and each runtime's peak memory (the process's resident memory
above what it was before that runtime was set up, sampled during setup and a first call; for
another backend, its child process's), and the ONNX conversion's own peak: the resident memory of
the child process `compile_for_inference` converts in (none with KERAS_NETS_ONNX_IN_PROCESS=1).
"""

import argparse
import contextlib
import glob
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py
import keras
import numpy as np

import keras_nets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling modules
from machine import cpu_description

from keras_nets import inference, registry
from keras_nets.inference import exporting, quantization, runtimes

SEED_MODELS = ("mobilenet_v2", "resnet50", "inception_v3", "xception")
KERAS = "keras.applications .predict"
OURS = "keras_nets .predict"


def main(argv=None):
    args = parse_args(argv)
    results, setups = [], []
    for name in args.models:
        model_results, setup = benchmark_model(
            name,
            args.batches,
            args.repeats,
            args.runtimes,
            args.size,
            args.alpha,
            args.backends,
            int8=args.int8,
        )
        results += model_results
        setups.append(setup)
        print(f"{name} done", file=sys.stderr, flush=True)
    print(f"Machine: {machine_description()}\n")
    print(throughput_table(results))
    print()
    print(setup_table(setups))
    if args.fidelity:
        print()
        print(int8_fidelity_table(args.models, args.size, args.fidelity))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot:
        plot(results, args.plot)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(SEED_MODELS),
        metavar="NAME",
        help=f"registry names (default: {' '.join(SEED_MODELS)})",
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8], metavar="N")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per batch size")
    parser.add_argument(
        "--runtimes",
        nargs="+",
        default=inference.available_runtimes(),
        choices=inference.RUNTIMES,
        help="fast-path runtimes to time",
    )
    parser.add_argument(
        "--backends",
        nargs="*",
        default=other_backends(),
        choices=("tensorflow", "jax", "torch"),
        help="other Keras backends to time our .predict on, each in a child "
        "process (default: every one installed; none: --backends alone)",
    )
    parser.add_argument(
        "--size",
        type=int,
        metavar="PIXELS",
        help="input height and width (default: each model's default size)",
    )
    parser.add_argument(
        "--alpha", type=float, help="width multiplier, for the models that take one (MobileNets)"
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help='write [{"model", "batch", "runtime", "images_per_s"}, ...] here',
    )
    parser.add_argument("--plot", metavar="PATH", help="write a PNG bar chart here")
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also time the int8 fast path on the runtimes that run it",
    )
    parser.add_argument(
        "--fidelity",
        type=int,
        default=0,
        metavar="N",
        help="print each model's int8 fidelity (top-1 agreement with float32, "
        "relative logit error) on N held-out images, with the tests' "
        "generated ImageNet-like weights (benchmarks/int8_fidelity.py)",
    )
    args = parser.parse_args(argv)
    for name in args.models:
        try:
            registry.get_config(name)
        except ValueError as error:
            parser.error(str(error))
    if args.repeats < 1 or any(b < 1 for b in args.batches) or (args.size or 1) < 1:
        parser.error("--repeats, --batches and --size must be positive")
    if args.alpha is not None and not args.alpha > 0:
        parser.error(f"--alpha {args.alpha}: expected a positive width multiplier")
    return args


def benchmark_model(
    name, batches, repeats, fast_runtimes, size=None, alpha=None, backends=(), int8=False
):
    """Times every runtime on `name`; returns (throughput rows, setup row).

    `size` (input height and width) and `alpha` (width multiplier) go to both builders when given;
    `backends`: other Keras backends to time our `.predict` on (`predict_on_other_backends`).
    """
    config = registry.get_config(name)
    twin_builder = getattr(keras.applications, config.builder, None)
    size = size or config.default_size
    options = {"weights": None}
    if size != config.default_size:
        options["input_shape"] = (size, size, 3)
    if alpha is not None:
        options["alpha"] = alpha
    setup = {"model": name, "memory": {}, "compile_s": {}}
    runners = {}

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as children:
        weights_path = os.path.join(tmp, f"{name}.h5")
        if twin_builder is not None:
            with peak_memory(setup, KERAS), timed(setup, "build_keras_s"):
                twin = twin_builder(**options)
            write_legacy_weights(twin, weights_path)
            with timed(setup, "load_keras_s"):
                twin.load_weights(weights_path)
            runners[KERAS] = lambda x: twin.predict(x, verbose=0)
        with peak_memory(setup, OURS), timed(setup, "build_ours_s"):
            ours = keras_nets.create_model(name, **options)
        write_legacy_weights(ours, weights_path)  # the twin's layer order may differ (resnet50)
        with timed(setup, "load_ours_s"):
            ours.load_weights(weights_path)
        runners[OURS] = lambda x: ours.predict(x, verbose=0)

        for fast_runtime in fast_runtimes:
            runtime = f"fast ({fast_runtime})"
            with (
                peak_memory(setup, runtime),
                timed(setup["compile_s"], fast_runtime),
                conversion_peak(setup, fast_runtime),
            ):
                fast = keras_nets.compile_for_inference(ours, fast_runtime)
            runners[runtime] = fast.predict
            if int8 and fast_runtime in quantization.INT8_RUNTIMES:
                runtime = f"fast int8 ({fast_runtime})"
                calibration = np.random.default_rng(1).uniform(-1, 1, (64, size, size, 3))
                with peak_memory(setup, runtime), timed(setup["compile_s"], f"int8 {fast_runtime}"):
                    fast = keras_nets.compile_for_inference(
                        ours, fast_runtime, precision="int8", calibration=calibration
                    )
                runners[runtime] = fast.predict
        if twin_builder is not None:
            runners.update(plain_runtimes(twin, tmp, setup))
        runners.update(
            children.enter_context(
                predict_on_other_backends(name, options, weights_path, backends, setup, tmp)
            )
        )

        results = []
        for batch in batches:
            x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
            for runtime, run in runners.items():
                with peak_memory(setup, runtime, keep_max=True):
                    run(x)  # warm-up: first calls trace, allocate and tune
                run(x)
            seconds = {runtime: [] for runtime in runners}
            for _ in range(repeats):
                for runtime, run in runners.items():
                    start = time.perf_counter()
                    run(x)
                    seconds[runtime].append(time.perf_counter() - start)
            for runtime, times in seconds.items():
                results.append(
                    {
                        "model": name,
                        "batch": batch,
                        "runtime": runtime,
                        "images_per_s": round(batch / statistics.median(times), 2),
                    }
                )
    return results, setup


def plain_runtimes(twin, tmp, setup):
    """ONNX Runtime and OpenVINO with default settings on Keras' own ONNX export of `twin`."""
    if not exporting.onnx_converter_installed():
        return {}
    path = os.path.join(tmp, "keras_applications.onnx")
    exporting.write_onnx(twin, path)
    import onnx

    inputs = [i.name for i in onnx.load(path, load_external_data=False).graph.input]
    if len(inputs) > 1:  # an in-graph Normalization's mean and variance (n/a in the table)
        print(
            f"{twin.name}: no plain rows: Keras' ONNX export of it takes {len(inputs)} inputs "
            f"({', '.join(inputs)}), not only the images",
            file=sys.stderr,
        )
        return {}
    runners = {}
    if runtimes.get_runtime("onnxruntime").is_installed():
        import onnxruntime

        with peak_memory(setup, "plain onnxruntime"):
            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        runners["plain onnxruntime"] = lambda x: session.run(None, {input_name: x})[0]
    if runtimes.get_runtime("openvino").is_installed():
        import openvino

        with peak_memory(setup, "plain openvino"):
            compiled = openvino.Core().compile_model(path, "CPU")
        runners["plain openvino"] = lambda x: compiled(x)[0]
    return runners


def write_legacy_weights(model, path):
    """Saves weights in the layout of the published .h5 files (Keras 2 `save_weights`)."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@contextlib.contextmanager
def timed(record, key):
    start = time.perf_counter()
    yield
    record[key] = time.perf_counter() - start


@contextlib.contextmanager
def peak_memory(setup, runtime, keep_max=False):
    """Records in setup["memory"][runtime] the peak resident MiB above the level at entry."""
    baseline = resident_mib()
    with sampled_peak(resident_mib) as peak:
        yield
    used = peak[0] - baseline
    previous = setup["memory"].get(runtime, 0.0)
    setup["memory"][runtime] = max(previous, used) if keep_max else previous + used


@contextlib.contextmanager
def sampled_peak(measure):
    """Calls `measure()` every 5 ms while the block runs; yields a list whose one item is, once the
    block is done, the largest value measured."""
    peak = [measure()]
    done = threading.Event()

    def sample():
        while not done.wait(0.005):
            peak[0] = max(peak[0], measure())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], measure())


def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- The ONNX conversion's child process, and .predict on the other Keras backends --------------


@contextlib.contextmanager
def conversion_peak(setup, runtime):
    """Records in setup["conversion_mib"][runtime] the peak resident MiB of this process's child
    processes while the block runs: the ONNX conversion's child, where `write_onnx` runs one."""
    with sampled_peak(children_resident_mib) as peak:
        yield
    setup.setdefault("conversion_mib", {})[runtime] = peak[0]


def children_resident_mib():
    """The resident MiB of this process's children, summed (Linux /proc; 0 elsewhere)."""
    total = 0
    for children in glob.glob("/proc/self/task/*/children"):
        with contextlib.suppress(OSError), open(children) as f:
            pids = f.read().split()
        for pid in pids:
            with contextlib.suppress(OSError), open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1])
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def other_backends():
    """The Keras backends installed here other than the one this process runs on."""
    return [
        backend
        for backend in ("tensorflow", "jax", "torch")
        if backend != keras.backend.backend() and importlib.util.find_spec(backend) is not None
    ]


# Run by `python -c` with KERAS_BACKEND set: argv[1] a registry name, argv[2] the builder's options
# (JSON), argv[3] the legacy .h5 weights. Prints "ready" once built, then answers each stdin line
# "BATCH" by predicting on a batch that size and printing "done"; at the end of stdin, the peak
# resident MiB above its level before building (set up and first called, as peak_memory measures).
_PREDICT_WORKER = """
import json, sys
import numpy as np
import keras_nets

def status_mib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key + ":"))

name, options, weights = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
if "input_shape" in options:
    options["input_shape"] = tuple(options["input_shape"])
baseline = status_mib("VmRSS")
model = keras_nets.create_model(name, **options)
model.load_weights(weights)
batches = {}
print("ready", flush=True)
for line in sys.stdin:
    batch = int(line)
    if batch not in batches:
        shape = (batch, *model.input_shape[1:])
        batches[batch] = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
    model.predict(batches[batch], verbose=0)
    print("done", flush=True)
print(status_mib("VmHWM") - baseline, flush=True)
"""


@contextlib.contextmanager
def predict_on_other_backends(name, options, weights_path, backends, setup, log_dir):
    """Yields {"keras_nets .predict (<backend>)": run(x)} for each of `backends`: our model, built
    with `options` and loaded from the same .h5 weights, in one child process per backend (Keras
    picks its backend once per process). The children are set up one after the other; each then
    waits on its stdin, idle, until `run(x)` asks it for one `.predict` on a batch of `len(x)`
    images, so the timed rounds interleave them with the other runtimes like any runtime. On exit,
    records each child's peak memory in setup["memory"] and ends it."""
    workers = {}
    try:
        for backend in backends:
            worker = PredictWorker(backend, name, options, weights_path, log_dir)
            workers[f"{OURS} ({backend})"] = worker
        yield {runtime: worker.run for runtime, worker in workers.items()}
        for runtime, worker in workers.items():
            setup["memory"][runtime] = worker.close()
    finally:
        for worker in workers.values():
            worker.process.kill()
            worker.process.wait()


class PredictWorker:
    """A child process running `_PREDICT_WORKER` on one Keras backend; its stderr goes to a log."""

    def __init__(self, backend, name, options, weights_path, log_dir):
        self.backend = backend
        self.log_path = os.path.join(log_dir, f"predict-{backend}.log")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _PREDICT_WORKER, name, json.dumps(options), weights_path],
                env={**os.environ, "KERAS_BACKEND": backend},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.answer("ready")

    def run(self, x):
        self.process.stdin.write(f"{len(x)}\n")
        self.process.stdin.flush()
        self.answer("done")

    def close(self):
        """Ends the child; returns its peak memory, in MiB."""
        self.process.stdin.close()
        peak = float(self.answer())
        self.process.wait()
        return peak

    def answer(self, expected=None):
        """The child's next stdout line; a RuntimeError with its last stderr line if it ended."""
        line = self.process.stdout.readline().strip()
        if line and expected in (None, line):
            return line
        self.process.wait()
        with open(self.log_path) as log:
            last = (log.read().strip().splitlines() or ["no error message"])[-1]
        raise RuntimeError(
            f"keras_nets .predict on {self.backend}, in a child process, failed: {last}"
        )


def int8_fidelity_table(names, size, held_out):
    """benchmarks/int8_fidelity.py's table for `names` with the tests' generated weights."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import int8_fidelity

    rows = {}
    for name in names:
        at = size or registry.get_config(name).default_size
        rows[f"{name} generated ({at} px)"] = int8_fidelity.generated(name, at, held_out)
    return int8_fidelity.table(rows)


def machine_description():
    cpu = cpu_description()  # model name and AVX2 / AVX-512 / VNNI
    versions = [f"TensorFlow {__import__('tensorflow').__version__}", f"Keras {keras.__version__}"]
    for module in ("onnxruntime", "openvino"):
        with contextlib.suppress(ImportError):
            versions.append(f"{module} {__import__(module).__version__.split('-')[0]}")
    for package in other_backends():  # their versions, without importing them here
        versions.append(f"{package} {importlib.metadata.version(package).split('+')[0]}")
    return (
        f"{cpu}, {inference.thread_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, {', '.join(versions)}"
    )


def throughput_table(results):
    """Markdown: one row per model and batch, one column per runtime, images per second."""
    runtimes = list(dict.fromkeys(r["runtime"] for r in results))
    rows = {}
    for r in results:
        rows.setdefault((r["model"], r["batch"]), {})[r["runtime"]] = r["images_per_s"]
    int8 = any(k.startswith("fast int8") for k in runtimes)
    lines = [
        "| model | batch | "
        + " | ".join(runtimes)
        + " | fast / keras.applications |"
        + (" int8 / float32 fast |" if int8 else ""),
        "|---|---|" + "---|" * (len(runtimes) + 1 + int8),
    ]
    for (model, batch), speeds in rows.items():
        fast = max((v for k, v in speeds.items() if k.startswith("fast (")), default=None)
        ratio = f"{fast / speeds[KERAS]:.2f}x" if fast and speeds.get(KERAS) else "n/a"
        cells = [f"{speeds[k]:.1f}" if k in speeds else "n/a" for k in runtimes]
        if int8:  # each int8 column over the float32 fast path on the same runtime
            pairs = [
                (v, speeds.get(k.replace("fast int8", "fast")))
                for k, v in speeds.items()
                if k.startswith("fast int8")
            ]
            ratio += " | " + (", ".join(f"{a / b:.2f}x" for a, b in pairs if b) or "n/a")
        lines.append(f"| {model} | {batch} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def setup_table(setups):
    """Markdown: build, weights-load and compile seconds, and peak memory per runtime."""
    lines = [
        "| model | build s (keras.applications / ours) | load .h5 s (keras.applications / ours) "
        "| fast-path compile s | peak memory MiB | ONNX conversion peak MiB (child process) |",
        "|---|---|---|---|---|---|",
    ]
    for s in setups:
        build = f"{s.get('build_keras_s', float('nan')):.1f} / {s['build_ours_s']:.1f}"
        load = f"{s.get('load_keras_s', float('nan')):.1f} / {s['load_ours_s']:.1f}"
        compiled = ", ".join(f"{k} {v:.1f}" for k, v in s["compile_s"].items())
        memory = ", ".join(f"{k} {v:.0f}" for k, v in s["memory"].items())
        conversion = (
            ", ".join(f"{k} {v:.0f}" for k, v in s.get("conversion_mib", {}).items() if v > 0)
            or "none"
        )
        lines.append(f"| {s['model']} | {build} | {load} | {compiled} | {memory} | {conversion} |")
    return "\n".join(lines)


def plot(results, path):
    """A horizontal bar chart of images per second, one group per model and batch (Pillow only)."""
    from PIL import Image, ImageDraw, ImageFont

    runtimes = list(dict.fromkeys(r["runtime"] for r in results))
    groups = list(dict.fromkeys((r["model"], r["batch"]) for r in results))
    speed = {(r["model"], r["batch"], r["runtime"]): r["images_per_s"] for r in results}
    palette = ["#888888", "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    font = ImageFont.load_default(size=14)
    bar, gap, label_w, chart_w, top = 16, 14, 230, 560, 40
    height = top + len(groups) * (len(runtimes) * bar + gap) + 30 + 20 * len(runtimes)
    image = Image.new("RGB", (label_w + chart_w + 80, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text(
        (10, 10),
        "images per second (higher is better); bars scaled to the fastest of each group",
        fill="black",
        font=font,
    )
    y = top
    for model, batch in groups:
        best = max(speed.get((model, batch, rt), 0) for rt in runtimes) or 1
        draw.text(
            (10, y + len(runtimes) * bar / 2 - 8),
            f"{model}, batch {batch}",
            fill="black",
            font=font,
        )
        for i, runtime in enumerate(runtimes):
            value = speed.get((model, batch, runtime))
            if value is not None:
                width = int(chart_w * value / best)
                draw.rectangle(
                    [label_w, y, label_w + width, y + bar - 2], fill=palette[i % len(palette)]
                )
                draw.text((label_w + width + 4, y), f"{value:.1f}", fill="black", font=font)
            y += bar
        y += gap
    for i, runtime in enumerate(runtimes):  # legend
        draw.rectangle([10, y + 4, 24, y + 16], fill=palette[i % len(palette)])
        draw.text((30, y), runtime, fill="black", font=font)
        y += 20
    image.save(path)


if __name__ == "__main__":
    main()
