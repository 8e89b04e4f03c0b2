"""benchmarks/throughput.py runs end to end on one small model, one batch size, one round.

It is not timed here (tests check correctness, not speed): the point is that it cannot rot.
"""

import importlib.util
import json
import pathlib
import shlex

import pytest
from PIL import Image
from required_runtimes import require_runtime

pytestmark = pytest.mark.slow_file  # minutes: parallel runs start it first

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "throughput.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_times_every_runtime_and_writes_its_table_json_and_plot(tmp_path, capsys):
    for runtime in ("onnxruntime", "openvino"):
        require_runtime(runtime)  # the plain ONNX Runtime and OpenVINO columns need both
    throughput = load_benchmark()

    throughput.main(
        [
            "--models",
            "mobilenet_v2",
            "--alpha",
            "0.35",
            "--size",
            "96",
            "--batches",
            "2",
            "--repeats",
            "1",
            "--runtimes",
            "onnxruntime",
            "tensorflow",
            # the other-backend column through TensorFlow in a child process: the same code as for
            # JAX or PyTorch, where building MobileNetV2 on JAX alone took 36 s here
            "--backends",
            "tensorflow",
            "--json",
            str(tmp_path / "out.json"),
            "--plot",
            str(tmp_path / "out.png"),
        ]
    )

    runtimes = [
        "keras.applications .predict",
        "keras_nets .predict",
        "fast (onnxruntime)",
        "fast (tensorflow)",
        "plain onnxruntime",
        "plain openvino",
        "keras_nets .predict (tensorflow)",
    ]
    rows = json.loads((tmp_path / "out.json").read_text())
    assert [(row["model"], row["batch"], row["runtime"]) for row in rows] == [
        ("mobilenet_v2", 2, runtime) for runtime in runtimes
    ]
    assert all(row["images_per_s"] > 0 for row in rows)
    tables = capsys.readouterr().out
    assert "| model | batch | " + " | ".join(runtimes) in tables
    assert "| mobilenet_v2 | 2 | " in tables
    assert "onnxruntime" in tables.split("| fast-path compile s |")[1]
    with Image.open(tmp_path / "out.png") as plot:
        assert plot.format == "PNG" and plot.width > 0


def test_the_documented_commands_parse():
    """Every `python benchmarks/throughput.py ...` line of docs/benchmarks.md names options, models
    and runtimes the script takes. tests/docs/test_readme_examples.py runs the page's second line
    (made small) and skips the first and third, whose options the end-to-end run above runs."""
    throughput = load_benchmark()
    page = SCRIPT.parents[1] / "docs" / "benchmarks.md"
    prefix = "python benchmarks/throughput.py "
    commands = [line for line in page.read_text().splitlines() if line.startswith(prefix)]
    assert len(commands) >= 3, commands
    for command in commands:
        throughput.parse_args(shlex.split(command.removeprefix(prefix)))


def test_the_benchmark_refuses_bad_options_in_one_line(capsys):
    throughput = load_benchmark()
    for argv in (["--models", "no_such_model"], ["--alpha", "0"], ["--size", "-3"]):
        with pytest.raises(SystemExit) as exit:
            throughput.main(argv)
        assert exit.value.code == 2
    assert "no_such_model" in capsys.readouterr().err


def load_machine():
    spec = importlib.util.spec_from_file_location("machine", SCRIPT.parent / "machine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("fpu avx avx2 fma", "AVX2 yes, AVX-512 no, VNNI no"),  # e.g. AMD EPYC 7002 (Zen 2)
        ("avx2 avx512f avx512_vnni", "AVX2 yes, AVX-512 yes, VNNI yes"),
        ("avx2 avx_vnni", "AVX2 yes, AVX-512 no, VNNI yes"),  # VNNI on 256-bit registers
    ],
)
def test_the_cpu_line_names_the_model_and_its_instruction_sets(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        f"processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: {flags}\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu\n"
    )
    assert load_machine().cpu_description(cpuinfo) == f"AMD EPYC 7B12 ({expected})"


def test_every_benchmark_prints_the_cpu_beside_its_figures():
    """Speeds, and int8's rounding in ONNX Runtime's kernels, depend on the CPU (VNNI or not)."""
    scripts = sorted(path for path in SCRIPT.parent.glob("*.py") if path.name != "machine.py")
    assert len(scripts) >= 4
    for script in scripts:
        assert "cpu_description()" in script.read_text(), script.name
