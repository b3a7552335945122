"""Bad input is refused with an ``InputError`` naming the file, the column and the rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomalyflow.data.loaders import read_npz, read_reference, read_table
from anomalyflow.data.schema import InputError, Schema

SCHEMA = Schema(features=("f1", "f2"), label="label", id="txn_id", timestamp="ts")
FORMATS = ("csv", "parquet")


def good_frame(rows: int = 4) -> pd.DataFrame:
    """Columns deliberately out of schema order, with string id and timestamp columns."""
    return pd.DataFrame(
        {
            "txn_id": [f"t{i}" for i in range(rows)],
            "label": [i % 2 for i in range(rows)],
            "f2": [10.0 * i for i in range(rows)],
            "ts": [f"2024-01-0{i + 1}T00:00:00" for i in range(rows)],
            "f1": [float(i) for i in range(rows)],
        }
    )


def write(frame: pd.DataFrame, tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / f"table.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def refused(call: pytest.ExceptionInfo[InputError], path: Path, column: str | None) -> str:
    """The message, after checking it names the file and (where there is one) the column."""
    error = call.value
    message = str(error)
    assert error.path == path
    assert str(path) in message
    assert error.column == column
    if column is not None:
        assert f"column '{column}'" in message
    return message


# --- CSV and Parquet -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_table_loads_features_in_schema_order(tmp_path: Path, fmt: str) -> None:
    frame = good_frame()
    table = read_table(write(frame, tmp_path, fmt), SCHEMA)

    assert table.x.dtype == np.float32
    assert table.feature_names == ("f1", "f2")
    np.testing.assert_array_equal(table.x, frame[["f1", "f2"]].to_numpy(dtype=np.float32))
    assert table.y is not None
    assert table.y.dtype.kind == "i"
    np.testing.assert_array_equal(table.y, [0, 1, 0, 1])
    assert table.frame is not None
    assert list(table.frame["txn_id"]) == list(frame["txn_id"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_unlabeled_schema_reads_unlabeled_table(tmp_path: Path, fmt: str) -> None:
    path = write(good_frame().drop(columns="label"), tmp_path, fmt)

    table = read_table(path, SCHEMA.without_label())

    assert table.y is None
    assert table.x.shape == (4, 2)


def test_without_label_keeps_every_other_role() -> None:
    unlabeled = SCHEMA.without_label()

    assert unlabeled.label is None
    assert (unlabeled.features, unlabeled.id, unlabeled.timestamp) == (
        SCHEMA.features,
        SCHEMA.id,
        SCHEMA.timestamp,
    )
    assert "label" not in unlabeled.columns
    assert SCHEMA.label == "label"  # the original is untouched


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("value", "kind"), [(np.nan, "NaN"), (np.inf, "infinite"), (1e308, "beyond float32")]
)
def test_non_finite_feature_is_refused(tmp_path: Path, fmt: str, value: float, kind: str) -> None:
    frame = good_frame()
    frame.loc[2, "f2"] = value
    path = write(frame, tmp_path, fmt)

    with pytest.raises(InputError) as call:
        read_table(path, SCHEMA)

    message = refused(call, path, "f2")
    assert f"{kind} at row 2" in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_column_is_refused(tmp_path: Path, fmt: str) -> None:
    path = write(good_frame().drop(columns="f2"), tmp_path, fmt)

    with pytest.raises(InputError) as call:
        read_table(path, SCHEMA)

    assert "missing column" in refused(call, path, "f2")


@pytest.mark.parametrize("fmt", FORMATS)
def test_extra_column_is_refused(tmp_path: Path, fmt: str) -> None:
    path = write(good_frame().assign(surprise=1.0), tmp_path, fmt)

    with pytest.raises(InputError) as call:
        read_table(path, SCHEMA)

    assert "extra column not in the schema" in refused(call, path, "surprise")


@pytest.mark.parametrize("fmt", FORMATS)
def test_label_column_is_required_by_a_labeled_schema(tmp_path: Path, fmt: str) -> None:
    path = write(good_frame().drop(columns="label"), tmp_path, fmt)

    with pytest.raises(InputError) as call:
        read_table(path, SCHEMA)

    assert "missing column" in refused(call, path, "label")


@pytest.mark.parametrize("fmt", FORMATS)
def test_reference_may_carry_labels_or_not_but_needs_every_feature(
    tmp_path: Path, fmt: str
) -> None:
    labeled = read_reference(write(good_frame(), tmp_path, fmt), SCHEMA)
    unlabeled = read_reference(write(good_frame().drop(columns="label"), tmp_path, fmt), SCHEMA)
    assert labeled.y is not None and unlabeled.y is None
    np.testing.assert_array_equal(labeled.x, unlabeled.x)

    path = write(good_frame().drop(columns="f2"), tmp_path, fmt)
    with pytest.raises(InputError) as call:
        read_reference(path, SCHEMA)
    assert "missing column required by the schema" in refused(call, path, "f2")


@pytest.mark.parametrize("fmt", FORMATS)
def test_string_feature_is_refused(tmp_path: Path, fmt: str) -> None:
    frame = good_frame()
    frame["f1"] = ["1.0", "2.0", "lots", "4.0"]
    path = write(frame, tmp_path, fmt)

    with pytest.raises(InputError) as call:
        read_table(path, SCHEMA)

    assert "non-numeric values" in refused(call, path, "f1")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("labels", "shown"),
    [([0, 1, 2, 0], "2"), (["0", "1", "yes", "0"], "'yes'")],
    ids=["two", "yes"],
)
def test_label_other_than_0_or_1_is_refused(
    tmp_path: Path, fmt: str, labels: list[object], shown: str
) -> None:
    path = write(good_frame().assign(label=labels), tmp_path, fmt)

    with pytest.raises(InputError) as call:
        read_table(path, SCHEMA)

    message = refused(call, path, "label")
    assert "label values must be 0 or 1" in message
    assert shown in message
    assert "at row 2" in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_fewer_rows_than_the_batch_size_are_refused(tmp_path: Path, fmt: str) -> None:
    path = write(good_frame(rows=3), tmp_path, fmt)

    with pytest.raises(InputError) as call:
        read_table(path, SCHEMA, min_rows=4)

    message = refused(call, path, None)
    assert "3 rows, fewer than the batch size 4" in message
    assert "batch_size" in message  # tells the user which knob to turn


@pytest.mark.parametrize("fmt", FORMATS)
def test_exactly_the_batch_size_is_enough(tmp_path: Path, fmt: str) -> None:
    table = read_table(write(good_frame(rows=4), tmp_path, fmt), SCHEMA, min_rows=4)

    assert len(table.x) == 4


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_file_is_refused(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"empty.{fmt}"
    path.write_bytes(b"")

    with pytest.raises(InputError) as call:
        read_table(path, SCHEMA)

    assert "empty" in refused(call, path, None)


def test_header_only_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(",".join(SCHEMA.columns) + "\n")

    with pytest.raises(InputError) as call:
        read_table(path, SCHEMA)

    assert "no rows" in refused(call, path, None)


def test_unsupported_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "table.xlsx"
    path.write_text("f1,f2\n1,2\n")

    with pytest.raises(InputError) as call:
        read_table(path, SCHEMA)

    assert "unsupported format" in refused(call, path, None)


@pytest.mark.parametrize("fmt", [*FORMATS, "npz"])
def test_missing_file_is_refused(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"absent.{fmt}"

    with pytest.raises(InputError) as call:
        if fmt == "npz":
            read_npz(path, require_labels=False)
        else:
            read_table(path, SCHEMA)

    assert "file not found" in refused(call, path, None)


# --- npz -------------------------------------------------------------------------------


def save_npz(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def features(rows: int = 6, columns: int = 3) -> np.ndarray:
    return np.arange(rows * columns, dtype=np.float64).reshape(rows, columns)


def test_valid_npz_loads_as_float32_with_int_labels(tmp_path: Path) -> None:
    path = save_npz(tmp_path, X=features(), y=np.array([0, 1, 0, 0, 1, 0], dtype=np.float64))

    table = read_npz(path, require_labels=True)

    assert table.x.dtype == np.float32
    np.testing.assert_array_equal(table.x, features())
    assert table.y is not None
    assert table.y.dtype.kind == "i"
    np.testing.assert_array_equal(table.y, [0, 1, 0, 0, 1, 0])
    assert table.feature_names == ("x0", "x1", "x2")
    assert table.frame is None


def test_npz_without_y_is_fine_when_labels_are_not_required(tmp_path: Path) -> None:
    table = read_npz(save_npz(tmp_path, X=features()), require_labels=False)

    assert table.y is None


@pytest.mark.parametrize(
    ("value", "kind"), [(np.nan, "NaN"), (-np.inf, "infinite"), (-1e300, "beyond float32")]
)
def test_npz_non_finite_x_is_refused(tmp_path: Path, value: float, kind: str) -> None:
    x = features()
    x[4, 1] = value
    path = save_npz(tmp_path, X=x, y=np.zeros(6))

    with pytest.raises(InputError) as call:
        read_npz(path, require_labels=True)

    assert f"{kind} at row 4" in refused(call, path, "X[:, 1]")


def test_npz_without_x_is_refused(tmp_path: Path) -> None:
    path = save_npz(tmp_path, data=features(), y=np.zeros(6))

    with pytest.raises(InputError) as call:
        read_npz(path, require_labels=True)

    assert "missing array" in refused(call, path, "X")


def test_npz_y_length_mismatch_is_refused(tmp_path: Path) -> None:
    path = save_npz(tmp_path, X=features(rows=6), y=np.zeros(5))

    with pytest.raises(InputError) as call:
        read_npz(path, require_labels=True)

    assert "has 5 values for 6 rows" in refused(call, path, "y")


def test_npz_string_x_is_refused(tmp_path: Path) -> None:
    path = save_npz(tmp_path, X=np.array([["a", "b"], ["c", "d"]]), y=np.zeros(2))

    with pytest.raises(InputError) as call:
        read_npz(path, require_labels=True)

    assert "non-numeric values" in refused(call, path, "X")


@pytest.mark.parametrize(
    ("y", "shown"),
    [(np.array([0, 1, 2, 0, 0, 0]), "2"), (np.array(["0", "1", "yes", "0", "0", "0"]), "'yes'")],
    ids=["two", "yes"],
)
def test_npz_y_other_than_0_or_1_is_refused(tmp_path: Path, y: np.ndarray, shown: str) -> None:
    path = save_npz(tmp_path, X=features(), y=y)

    with pytest.raises(InputError) as call:
        read_npz(path, require_labels=True)

    message = refused(call, path, "y")
    assert "label values must be 0 or 1" in message
    assert shown in message
    assert "at row 2" in message


def test_npz_missing_y_is_refused_when_labels_are_required(tmp_path: Path) -> None:
    path = save_npz(tmp_path, X=features())

    with pytest.raises(InputError) as call:
        read_npz(path, require_labels=True)

    assert "labels are required" in refused(call, path, "y")


def test_npz_fewer_rows_than_the_batch_size_are_refused(tmp_path: Path) -> None:
    path = save_npz(tmp_path, X=features(rows=6), y=np.zeros(6))

    with pytest.raises(InputError) as call:
        read_npz(path, require_labels=True, min_rows=64)

    assert "6 rows, fewer than the batch size 64" in refused(call, path, None)


def test_npz_unreadable_bytes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"certainly not a zip archive")

    with pytest.raises(InputError) as call:
        read_npz(path, require_labels=False)

    assert "not a readable .npz" in refused(call, path, None)


def test_npz_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")

    with pytest.raises(InputError) as call:
        read_npz(path, require_labels=False)

    assert "empty" in refused(call, path, None)


def test_npz_column_vector_y_is_accepted_or_refused_by_name(tmp_path: Path) -> None:
    path = save_npz(tmp_path, X=features(), y=np.zeros((6, 1)))

    try:
        table = read_npz(path, require_labels=True)
    except InputError as error:
        assert error.column == "y"
    else:
        assert table.y is not None
        assert table.y.shape == (6,)
