"""README.md's model table, read as {model name: its cells}: the table's own tests (tests/docs/
test_readme_model_table.py) and the deeper twins' one build (tests/core/test_features.py)."""

import pathlib
import re

from keras_nets import get_config

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def table_rows():
    """{model name: its cells} of the table after the `<!-- model-table` marker."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("<!-- model-table"))
    rows = {}
    for line in lines[start + 3 :]:  # the marker, the header, the separator
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        name = cells[0].strip("`")
        assert name not in rows, f"README lists {name} twice"
        rows[name] = cells
    return rows


def assert_row_describes(name, model):
    """`model`, built by `create_model(name)` at its default size with the top, is what its row
    says: the builder, the input size and the parameter count, with 1000 classes."""
    config = get_config(name)
    _, builder, size, parameters, *_ = table_rows()[name]
    assert model.input_shape == (None, config.default_size, config.default_size, 3)
    assert model.output_shape == (None, 1000)
    assert builder == f"`{config.builder}`"
    assert re.match(rf"{config.default_size}\b", size)
    assert int(parameters.replace(",", "")) == model.count_params()


def feature_levels_cell(levels):
    """The last cell of a row, "P1-P5: 64, 128, ...", of [(level, channels)]."""
    channels = ", ".join(str(count) for _, count in levels)
    return f"{levels[0][0]}-{levels[-1][0]}: {channels}"
