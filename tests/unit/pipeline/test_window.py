"""The training window keeps every accepted batch and late label, each row once."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from anomalyflow.data.loaders import Table, table_from_frame
from anomalyflow.data.schema import InputError, Schema
from anomalyflow.params import DataParams, PathsParams, WindowParams
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline.feedback import apply_feedback
from anomalyflow.pipeline.window import append_batch, read_window, release_pending, window_digest

SCHEMA = Schema(features=("a", "b"), label="y", id="row_id", timestamp="at")
ALL = WindowParams(days=None, max_rows=None)


def _batch(first_id: int, rows: int, day: str) -> Table:
    frame = pd.DataFrame(
        {
            "row_id": range(first_id, first_id + rows),
            "at": pd.date_range(day, periods=rows, freq="h"),
            "a": [float(i) for i in range(rows)],
            "b": [1.0] * rows,
            "y": [1 if i == 0 else 0 for i in range(rows)],
        }
    )
    return table_from_frame(Path(f"{day}.parquet"), frame, SCHEMA)


@pytest.fixture
def paths(tmp_path: Path) -> ArtifactPaths:
    return ArtifactPaths.from_params(PathsParams(), DataParams(), root=tmp_path)


def test_batches_accumulate_once_each_and_the_newest_rows_are_kept(paths: ArtifactPaths) -> None:
    assert append_batch(paths, _batch(0, 10, "2026-01-01"), "digest-one", "row_id")
    assert append_batch(paths, _batch(10, 10, "2026-01-05"), "digest-two", "row_id")
    assert not append_batch(paths, _batch(10, 10, "2026-01-05"), "digest-two", "row_id")
    assert release_pending(paths) == 2
    window = read_window(paths, SCHEMA, ALL)
    assert window.frame is not None and window.frame["row_id"].tolist() == list(range(20))
    newest = read_window(paths, SCHEMA, WindowParams(days=None, max_rows=5))
    assert newest.frame is not None and newest.frame["row_id"].tolist() == list(range(15, 20))
    recent = read_window(paths, SCHEMA, WindowParams(days=1.0, max_rows=None))
    assert recent.frame is not None and recent.frame["row_id"].min() >= 10


def test_rows_the_window_holds_are_not_added_again_from_another_file(
    paths: ArtifactPaths,
) -> None:
    """The same batch saved as CSV (another file digest) was added whole: every row, and
    every labeled anomaly, twice in the training window."""
    assert append_batch(paths, _batch(0, 10, "2026-01-01"), "digest-parquet", "row_id") == 10
    release_pending(paths)

    assert append_batch(paths, _batch(0, 10, "2026-01-01"), "digest-csv", "row_id") == 0
    assert append_batch(paths, _batch(5, 10, "2026-01-01"), "digest-overlap", "row_id") == 5
    release_pending(paths)

    window = read_window(paths, SCHEMA, ALL)
    assert window.frame is not None and sorted(window.frame["row_id"]) == list(range(15))


def test_a_crash_while_appending_leaves_the_window_as_it_was(
    paths: ArtifactPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    append_batch(paths, _batch(0, 10, "2026-01-01"), "digest-one", "row_id")
    release_pending(paths)
    before = sorted(p.name for p in paths.window.iterdir())

    def torn_write(self: pd.DataFrame, path: Path, **_: object) -> None:
        Path(path).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", torn_write)
    with pytest.raises(OSError):
        append_batch(paths, _batch(10, 10, "2026-01-05"), "digest-two", "row_id")
    monkeypatch.undo()
    assert release_pending(paths) == 0
    assert sorted(p.name for p in paths.window.iterdir()) == before
    assert len(read_window(paths, SCHEMA, ALL).x) == 10


def test_late_labels_reach_window_rows_by_id_and_count_as_new_data(
    paths: ArtifactPaths, tmp_path: Path
) -> None:
    append_batch(paths, _batch(0, 10, "2026-01-01"), "digest-one", "row_id")
    before = window_digest(paths)
    labels = tmp_path / "chargebacks.csv"
    labels.write_text("id,label,labeled_at\n3,1,2026-02-01\n4,1,2026-02-01\n0,1,2026-02-01\n")
    done = apply_feedback(paths, SCHEMA, labels)
    assert (done.received, done.changed) == (3, 2)  # row 0 was already labeled 1
    release_pending(paths)
    window = read_window(paths, SCHEMA, ALL)
    assert window.y is not None and window.y.tolist()[:5] == [1, 0, 0, 1, 1]
    assert window_digest(paths) != before


def test_labels_from_a_csv_and_then_a_parquet_file_both_attach(
    paths: ArtifactPaths, tmp_path: Path
) -> None:
    append_batch(paths, _batch(0, 10, "2026-01-01"), "digest-one", "row_id")
    text = tmp_path / "chargebacks.csv"
    text.write_text("id,label,labeled_at\n3,1,2026-02-01T10:00:00\n")
    apply_feedback(paths, SCHEMA, text)
    table = tmp_path / "confirmed.parquet"
    when = pd.to_datetime(["2026-02-02 09:30"])
    pd.DataFrame({"id": [4], "label": [1], "labeled_at": when}).to_parquet(table)

    done = apply_feedback(paths, SCHEMA, table)  # was an ArrowTypeError: text, then datetimes

    assert done.changed == 1
    release_pending(paths)
    window = read_window(paths, SCHEMA, ALL)
    assert window.y is not None and window.y.tolist()[3:5] == [1, 1]


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("id,label\n3,1\n99,1\n", "id"),  # 99 is not in the window
        ("id,label\n3,1\n3,0\n", "id"),  # the same id with both labels
        ("id,label\n3,2\n", "label"),
        ("id\n3\n", "label"),
        ("id,label,amount\n3,1,5\n", "amount"),
        ("id,label,labeled_at\n3,1,2026-02-01\n4,1,garbage\n", "labeled_at"),
        ("id,label\n", None),  # no rows: was taken as new labels, and the next run trained
    ],
)
def test_bad_feedback_is_refused_whole_and_changes_nothing(
    paths: ArtifactPaths, tmp_path: Path, text: str, column: str | None
) -> None:
    append_batch(paths, _batch(0, 10, "2026-01-01"), "digest-one", "row_id")
    before = window_digest(paths)
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    with pytest.raises(InputError) as refused:
        apply_feedback(paths, SCHEMA, labels)
    assert refused.value.column == column
    assert window_digest(paths) == before


def test_what_arrives_between_trainings_waits_apart_counts_as_new_and_joins_once(
    paths: ArtifactPaths, tmp_path: Path
) -> None:
    """Fine-tuning's window (its DVC dependency) holds what the latest model learned
    from; a batch and labels accepted in a skipped run wait in ``pending/`` until the
    next training takes them, each row once."""
    append_batch(paths, _batch(0, 10, "2026-01-01"), "digest-one", "row_id")
    release_pending(paths)  # the first training
    trained = sorted(p.name for p in paths.window.iterdir())
    before = window_digest(paths)
    append_batch(paths, _batch(10, 10, "2026-01-05"), "digest-two", "row_id")  # skipped: cooldown
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n3,1\n12,1\n")  # a trained row and a pending one
    apply_feedback(paths, SCHEMA, labels)
    assert sorted(p.name for p in paths.window.iterdir()) == trained  # untouched
    assert len(read_window(paths, SCHEMA, ALL).x) == 10
    grown = window_digest(paths)
    assert grown != before  # the policy sees new data
    assert not append_batch(paths, _batch(10, 10, "2026-01-05"), "digest-two", "row_id")
    assert release_pending(paths) == 1
    assert window_digest(paths) == grown  # moving it is no new data
    window = read_window(paths, SCHEMA, ALL)
    assert window.frame is not None and window.frame["row_id"].tolist() == list(range(20))
    assert window.y is not None and window.y[[0, 3, 10, 12]].tolist() == [1, 1, 1, 1]
    assert list(paths.pending.iterdir()) == []


def test_a_crash_half_way_through_a_release_loses_and_doubles_nothing(
    paths: ArtifactPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day, first in (("2026-01-01", 0), ("2026-01-02", 10), ("2026-01-03", 20)):
        append_batch(paths, _batch(first, 10, day), f"{first:02d}-digest", "row_id")
    digest = window_digest(paths)
    real_replace, moves = os.replace, []

    def crash_on_second(source: object, target: object) -> None:
        moves.append(source)
        if len(moves) == 2:
            raise OSError("killed")
        real_replace(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", crash_on_second)
    with pytest.raises(OSError):
        release_pending(paths)
    monkeypatch.undo()
    assert window_digest(paths) == digest
    assert release_pending(paths) == 2  # the next release finishes the move
    rows = read_window(paths, SCHEMA, ALL).frame
    assert rows is not None and sorted(rows["row_id"]) == list(range(30))
