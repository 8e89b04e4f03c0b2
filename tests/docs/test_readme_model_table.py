"""README.md's model table has exactly one correct row per registry entry: name, builder, input
size and parameter count, checked on each model built by `create_model` at its default size,
and the feature levels with their channels, as `feature_info` gives them."""

import pathlib
import re

import pytest

from keras_nets import create_model, feature_info, get_config, list_models

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


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


def test_the_table_lists_the_registry_in_its_order():
    assert list(table_rows()) == list_models()


@pytest.mark.parametrize("name", list_models())
def test_create_model_builds_the_row_of_the_table(name):
    """The model at its default size, 1000 classes, with the builder and the parameter count of
    its row (weights=None: building is what costs, so the one build serves every check)."""
    config = get_config(name)
    _, builder, size, parameters, *_ = table_rows()[name]
    model = create_model(name, weights=None)
    assert model.input_shape == (None, config.default_size, config.default_size, 3)
    assert model.output_shape == (None, 1000)
    assert builder == f"`{config.builder}`"
    assert re.match(rf"{config.default_size}\b", size)
    assert int(parameters.replace(",", "")) == model.count_params()


@pytest.mark.parametrize("name", list_models())
def test_the_feature_levels_column_is_what_feature_info_says(name):
    """`feature_info` (channels at the default width) written as "P1-P5: 64, 128, ..."."""
    info = feature_info(name)
    levels = f"{info[0]['level']}-{info[-1]['level']}"
    channels = ", ".join(str(entry["channels"]) for entry in info)
    assert table_rows()[name][-1] == f"{levels}: {channels}"
