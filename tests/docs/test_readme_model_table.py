"""README.md's model table has exactly one correct row per registry entry: name, builder, input
size and parameter count, checked on each model built by `create_model` at its default size,
and the feature levels with their channels, as `feature_info` gives them."""

import pytest
from model_sample import family_sample
from readme_table import assert_row_describes, feature_levels_cell, table_rows

from keras_nets import create_model, feature_info, list_models


def test_the_table_lists_the_registry_in_its_order():
    assert list(table_rows()) == list_models()


# The members tests/model_sample.py leaves out are built once, for all these checks, by
# tests/core/test_features.py's test_a_member_left_out_of_the_sample_is_built_once_...
@pytest.mark.parametrize("name", family_sample())
def test_create_model_builds_the_row_of_the_table(name):
    """The model at its default size, 1000 classes, with the builder and the parameter count of
    its row (weights=None: building is what costs, so the one build serves every check)."""
    assert_row_describes(name, create_model(name, weights=None))


@pytest.mark.parametrize("name", family_sample())
def test_the_feature_levels_column_is_what_feature_info_says(name):
    """`feature_info` (channels at the default width) written as "P1-P5: 64, 128, ..."."""
    info = feature_info(name)
    assert table_rows()[name][-1] == feature_levels_cell(
        [(entry["level"], entry["channels"]) for entry in info]
    )
