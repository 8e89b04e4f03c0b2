"""The CPU a benchmark ran on, printed beside its table: speeds (and int8's rounding, through
ONNX Runtime's kernels) depend on the CPU's model and on the instruction sets its kernels use.
Without AVX-512 VNNI (or AVX-VNNI), ONNX Runtime's uint8 x int8 kernels add pairs of products in
16 bits; the machines this project runs on differ (AMD EPYC, AVX2 only or AVX-512 with VNNI).
"""

import contextlib
import platform

# (name shown, /proc/cpuinfo flags any of which provides it)
INSTRUCTION_SETS = (
    ("AVX2", ("avx2",)),
    ("AVX-512", ("avx512f",)),
    ("VNNI", ("avx512_vnni", "avx_vnni")),
)


def cpu_description(cpuinfo="/proc/cpuinfo"):
    """E.g. "AMD EPYC 9B14 (AVX2 yes, AVX-512 yes, VNNI yes)": the first CPU's model name and
    instruction sets; "(instruction sets unknown)" where /proc/cpuinfo has no flags line."""
    model, flags = None, None
    with contextlib.suppress(OSError), open(cpuinfo) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and flags is None:
                flags = set(value.split())
    model = model or platform.processor() or "unknown CPU"
    if flags is None:
        return f"{model} (instruction sets unknown)"
    found = ", ".join(
        f"{name} {'yes' if flags.intersection(names) else 'no'}" for name, names in INSTRUCTION_SETS
    )
    return f"{model} ({found})"


def markdown_table(header, rows, numeric_from=1):
    """A Markdown table: `header` and `rows` (lists of cells), columns from `numeric_from` on
    right-aligned (figures)."""
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


if __name__ == "__main__":
    print(cpu_description())
