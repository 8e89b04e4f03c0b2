"""Images per second on this CPU: keras.applications, keras_nets and its fast path, side by side.

    python benchmarks/throughput.py                       # the four seed models, batch 1 and 8
    python benchmarks/throughput.py --models mobilenet_v2 --repeats 5 --json out.json --plot out.png
    python benchmarks/throughput.py --models mobilenet_v2 --alpha 0.35 --size 96 --batches 1 --repeats 1

For every model and batch size, all runtimes are set up first and then timed in turns, one call
each per round, so that a slow spell of the machine hits them all alike; a row gives the median
of the rounds. Runtimes:
  keras.applications .predict   the keras.applications twin, `model.predict(x)`
  keras_nets .predict           our builder, `model.predict(x)`
  fast (<runtime>)              `keras_nets.compile_for_inference(ours, runtime).predict(x)`,
                                for each installed runtime
  plain onnxruntime / openvino  the keras.applications model exported with Keras' own
                                `model.export(format="onnx")`, run with default settings
Weights are random; each model loads them back from a legacy-format .h5 file (the format of the
published weights), which is timed. The setup
table gives build and load times and each runtime's peak memory (the process's resident memory
above what it was before that runtime was set up, sampled during setup and a first call).
"""

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_nets  # noqa: E402
from keras_nets import inference, registry  # noqa: E402
from keras_nets.inference import exporting, runtimes  # noqa: E402

SEED_MODELS = ("mobilenet_v2", "resnet50", "inception_v3", "xception")
KERAS = "keras.applications .predict"
OURS = "keras_nets .predict"


def main(argv=None):
    args = parse_args(argv)
    results, setups = [], []
    for name in args.models:
        model_results, setup = benchmark_model(
            name, args.batches, args.repeats, args.runtimes, args.size, args.alpha
        )
        results += model_results
        setups.append(setup)
        print(f"{name} done", file=sys.stderr, flush=True)
    print(f"Machine: {machine_description()}\n")
    print(throughput_table(results))
    print()
    print(setup_table(setups))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot:
        plot(results, args.plot)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(SEED_MODELS), metavar="NAME",
                        help=f"registry names (default: {' '.join(SEED_MODELS)})")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8], metavar="N")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per batch size")
    parser.add_argument("--runtimes", nargs="+", default=inference.available_runtimes(),
                        choices=inference.RUNTIMES, help="fast-path runtimes to time")
    parser.add_argument("--size", type=int, metavar="PIXELS",
                        help="input height and width (default: each model's default size)")
    parser.add_argument("--alpha", type=float,
                        help="width multiplier, for the models that take one (MobileNets)")
    parser.add_argument("--json", metavar="PATH",
                        help='write [{"model", "batch", "runtime", "images_per_s"}, ...] here')
    parser.add_argument("--plot", metavar="PATH", help="write a PNG bar chart here")
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


def benchmark_model(name, batches, repeats, fast_runtimes, size=None, alpha=None):
    """Times every runtime on `name`; returns (throughput rows, setup row).

    `size` (input height and width) and `alpha` (width multiplier) go to both builders when given.
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

    with tempfile.TemporaryDirectory() as tmp:
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
            with peak_memory(setup, runtime), timed(setup["compile_s"], fast_runtime):
                fast = keras_nets.compile_for_inference(ours, fast_runtime)
            runners[runtime] = fast.predict
        if twin_builder is not None:
            runners.update(plain_runtimes(twin, tmp, setup))

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
                results.append({
                    "model": name,
                    "batch": batch,
                    "runtime": runtime,
                    "images_per_s": round(batch / statistics.median(times), 2),
                })
    return results, setup


def plain_runtimes(twin, tmp, setup):
    """ONNX Runtime and OpenVINO with default settings on Keras' own ONNX export of `twin`."""
    if not exporting.onnx_converter_installed():
        return {}
    path = os.path.join(tmp, "keras_applications.onnx")
    exporting.write_onnx(twin, path)
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
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.wait(0.005):
            peak[0] = max(peak[0], resident_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        done.set()
        sampler.join()
        used = max(peak[0], resident_mib()) - baseline
        previous = setup["memory"].get(runtime, 0.0)
        setup["memory"][runtime] = max(previous, used) if keep_max else previous + used


def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def machine_description():
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    versions = [f"TensorFlow {__import__('tensorflow').__version__}", f"Keras {keras.__version__}"]
    for module in ("onnxruntime", "openvino"):
        with contextlib.suppress(ImportError):
            versions.append(f"{module} {__import__(module).__version__.split('-')[0]}")
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
    lines = [
        "| model | batch | " + " | ".join(runtimes) + " | fast / keras.applications |",
        "|---|---|" + "---|" * (len(runtimes) + 1),
    ]
    for (model, batch), speeds in rows.items():
        fast = max((v for k, v in speeds.items() if k.startswith("fast")), default=None)
        ratio = f"{fast / speeds[KERAS]:.2f}x" if fast and speeds.get(KERAS) else "n/a"
        cells = [f"{speeds[k]:.1f}" if k in speeds else "n/a" for k in runtimes]
        lines.append(f"| {model} | {batch} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def setup_table(setups):
    """Markdown: build, weights-load and compile seconds, and peak memory per runtime."""
    lines = [
        "| model | build s (keras.applications / ours) | load .h5 s (keras.applications / ours) "
        "| fast-path compile s | peak memory MiB |",
        "|---|---|---|---|---|",
    ]
    for s in setups:
        build = f"{s.get('build_keras_s', float('nan')):.1f} / {s['build_ours_s']:.1f}"
        load = f"{s.get('load_keras_s', float('nan')):.1f} / {s['load_ours_s']:.1f}"
        compiled = ", ".join(f"{k} {v:.1f}" for k, v in s["compile_s"].items())
        memory = ", ".join(f"{k} {v:.0f}" for k, v in s["memory"].items())
        lines.append(f"| {s['model']} | {build} | {load} | {compiled} | {memory} |")
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
    draw.text((10, 10), "images per second (higher is better); bars scaled to the fastest of each group", fill="black", font=font)
    y = top
    for model, batch in groups:
        best = max(speed.get((model, batch, rt), 0) for rt in runtimes) or 1
        draw.text((10, y + len(runtimes) * bar / 2 - 8), f"{model}, batch {batch}", fill="black", font=font)
        for i, runtime in enumerate(runtimes):
            value = speed.get((model, batch, runtime))
            if value is not None:
                width = int(chart_w * value / best)
                draw.rectangle([label_w, y, label_w + width, y + bar - 2], fill=palette[i % len(palette)])
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
