"""The Great Expectations gate: good batches pass, each kind of bad batch is named."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from anomalyflow.data.schema import Schema
from anomalyflow.pipeline.data import SYNTHETIC_SCHEMA
from anomalyflow.validation.suite import (
    DataValidationError,
    suite_fits,
    validate_batch,
)


def test_suite_is_a_hand_editable_file_in_the_project(
    project: tuple[Path, pd.DataFrame],
) -> None:
    root, _ = project
    assert suite_fits(root, SYNTHETIC_SCHEMA)
    text = (root / "gx" / "expectations" / "incoming_batch.json").read_text()
    assert "expect_column_values_to_be_between" in text and '"amount"' in text


def test_suite_fits_only_the_schema_it_was_built_for(
    project: tuple[Path, pd.DataFrame],
) -> None:
    root, _ = project
    assert not suite_fits(root, Schema(("temperature_c", "pressure_kpa"), label="fault"))
    assert not suite_fits(root, SYNTHETIC_SCHEMA.without_label())
    assert not suite_fits(root.parent / "no-project-here", SYNTHETIC_SCHEMA)


def test_clean_batch_passes_and_builds_data_docs(project: tuple[Path, pd.DataFrame]) -> None:
    root, holdout = project
    result = validate_batch(root, holdout, "holdout.parquet")
    assert result.success and not result.failures
    assert result.data_docs is not None and result.data_docs.exists()


@pytest.mark.parametrize(
    ("damage", "column", "expectation"),
    [
        (
            lambda f: f.assign(amount=f.amount.where(f.index != 3)),
            "amount",
            "expect_column_values_to_not_be_null",
        ),
        (
            lambda f: f.assign(is_fraud=f.is_fraud.where(f.index != 4, 2)),
            "is_fraud",
            "expect_column_values_to_be_in_set",
        ),
        (lambda f: f.assign(hour=f.hour + 1000), "hour", "expect_column_values_to_be_between"),
        (lambda f: f.assign(extra=1), None, "expect_table_columns_to_match_set"),
        (lambda f: f.head(20), None, "expect_table_row_count_to_be_between"),
        (lambda f: f.assign(is_fraud=1), "is_fraud", "expect_column_mean_to_be_between"),
    ],
)
def test_bad_batch_is_rejected_naming_the_rule_and_column(
    project: tuple[Path, pd.DataFrame],
    damage,
    column: str | None,
    expectation: str,  # type: ignore[no-untyped-def]
) -> None:
    root, holdout = project
    with pytest.raises(DataValidationError) as raised:
        validate_batch(root, damage(holdout.copy()), "incoming/batch-7.parquet")
    message = str(raised.value)
    assert "incoming/batch-7.parquet" in message
    assert expectation in message
    if column is not None:
        assert f"column '{column}'" in message
    assert any(f.expectation == expectation for f in raised.value.result.failures)
