"""``anomalyflow init``: a project from one CSV or Parquet file of the user's.

The file is split into the three parts the pipeline stands on: the earliest rows as the
reference (history, its labels dropped), then the batch, then the holdout, by time where
a timestamp column exists and at random (seeded, keeping the anomaly share) where none
does. The parts are written as Parquet beside the other data, and ``params.yaml``'s
``data:`` block is replaced in place, line for line, so every other section keeps its
comments. Every check runs before anything is written: a refusal leaves no file behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from anomalyflow.atomic import atomic_path, write_text
from anomalyflow.data.loaders import table_from_frame
from anomalyflow.data.schema import InputError, Schema
from anomalyflow.data.splits import stratified_split, time_split
from anomalyflow.errors import Refusal
from anomalyflow.evaluation.threshold import explain_threshold
from anomalyflow.params import DataParams, Params, params_from_dict
from anomalyflow.params_file import read_yaml

SHARES = {"reference": 0.6, "batch": 0.2, "holdout": 0.2}  # earliest to latest
FILE_NAMES = {
    "reference": "history.parquet",
    "batch": "recent.parquet",
    "holdout": "holdout.parquet",
}
MIN_ROWS = 20  # fewer cannot give each part rows of both labels


class InitRefused(Refusal):
    """``init`` would replace something the user set up; ``--force`` allows it."""


@dataclass(frozen=True)
class Roles:
    """The columns the user named on the command line."""

    label: str
    id: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote and what the user should know before the first run."""

    data: DataParams
    left_out: tuple[str, ...]  # columns that are not numeric, so not features
    split: str  # how the rows were split, in words
    rows: dict[str, int]  # per part
    anomalies: dict[str, int]  # label-1 rows per part (reference: before its labels went)
    notes: tuple[str, ...]  # what the first run would trip on, and the threshold's reach

    def lines(self, params_path: Path) -> list[str]:
        """The report ``init`` prints, ending with the next command."""
        d = self.data
        out = [f"features ({len(d.features)}): {', '.join(d.features)}"]
        if self.left_out:
            out.append(f"left out (not numeric): {', '.join(self.left_out)}")
        out.append(self.split)
        for part, path in (("reference", d.reference), ("batch", d.batch), ("holdout", d.holdout)):
            out.append(
                f"  {part}: {path} ({self.rows[part]:,} rows, {self.anomalies[part]:,} anomalies)"
            )
        out.append(f"wrote the data section of {params_path}")
        out += list(self.notes)
        option = "" if params_path == Path("params.yaml") else f" --params {params_path}"
        out.append(f"next: anomalyflow run{option}")
        return out


def init_project(data: Path, roles: Roles, params_path: Path, force: bool = False) -> InitResult:
    """Split ``data`` into reference, batch and holdout, and point ``params_path`` at them.

    Raises:
        InputError: a missing or unreadable file, an unknown column, bad values, or a
            part without both labels where the pipeline needs them.
        ParamsError: ``params_path`` missing or invalid.
        InitRefused: ``data.source`` is already ``files``, or a target file exists,
            without ``force``; or the ``data:`` block cannot be told apart in the file.
    """
    text, params = _read_params(params_path)
    if params.data.source == "files" and not force:
        raise InitRefused(
            f"{params_path}: data already points at your files (data.source: files); "
            "--force replaces its data section"
        )
    frame = _read_frame(data)
    schema, left_out = _schema(data, frame, roles)
    table_from_frame(data, frame[list(schema.columns)], schema)  # the pipeline's own checks
    if schema.timestamp:
        frame = frame.assign(**{schema.timestamp: _times(data, frame[schema.timestamp])})
    parts, split = _split(data, frame, schema, params.runtime.seed)
    folder = Path(params.paths.data_dir) / _slug(data.stem)
    targets = {part: folder / FILE_NAMES[part] for part in SHARES}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not force:
        raise InitRefused(f"{existing[0]}: already exists; --force replaces it")
    block = data_block(data.name, schema, left_out, targets, folder / "incoming")
    new_text, new_params = _new_params(params_path, text, block)
    labels = {part: frame[roles.label].to_numpy()[rows] for part, rows in parts.items()}
    for part, rows in parts.items():
        columns = [c for c in schema.columns if part != "reference" or c != roles.label]
        with atomic_path(targets[part]) as partial:
            frame.iloc[rows][columns].to_parquet(partial, index=False)
    write_text(params_path, new_text)
    return InitResult(
        data=new_params.data,
        left_out=left_out,
        split=split,
        rows={part: len(rows) for part, rows in parts.items()},
        anomalies={part: int((values == 1).sum()) for part, values in labels.items()},
        notes=tuple(_id_like(frame, schema.features) + _notes(new_params, labels)),
    )


def _read_params(path: Path) -> tuple[str, Params]:
    """The file's text and its parsed params: a missing or invalid file is refused."""
    raw = read_yaml(path)
    return path.read_text(), params_from_dict({} if raw is None else raw, path)


def _new_params(path: Path, text: str, block: str) -> tuple[str, Params]:
    """The file's text with ``block`` as its data section, parsed and checked unwritten.

    Every other section must read exactly as before: a file laid out so that the block
    cannot be told apart is refused rather than half rewritten.
    """
    before = yaml.safe_load(text) or {}
    new_text = replace_data_block(text, block)
    try:
        after = yaml.safe_load(new_text)
    except yaml.YAMLError:
        after = None
    same_rest = isinstance(after, dict) and {k: v for k, v in after.items() if k != "data"} == {
        k: v for k, v in before.items() if k != "data"
    }
    if not same_rest or ("data" in before and not re.search(r"^data:", text, re.MULTILINE)):
        raise InitRefused(f"{path}: cannot replace its data section cleanly; edit it by hand")
    return new_text, params_from_dict(after, path)


def _read_frame(path: Path) -> pd.DataFrame:
    """The user's CSV or Parquet file as a frame, or a one-line refusal naming it."""
    if not path.is_file():
        raise InputError(path, None, "file not found")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InputError(path, None, "unsupported format (use .csv or .parquet)")
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise InputError(path, None, "file is empty") from None
    except (OSError, ValueError) as error:
        raise InputError(path, None, f"cannot be read ({error})") from None
    if frame.empty:
        raise InputError(path, None, "file has no rows")
    if not all(isinstance(c, str) for c in frame.columns):
        raise InputError(path, None, "every column needs a name (a header row)")
    return frame.reset_index(drop=True)


def _schema(path: Path, frame: pd.DataFrame, roles: Roles) -> tuple[Schema, tuple[str, ...]]:
    """Features (the numeric columns besides the named ones) and the columns left out."""
    named = {"label": roles.label, "id": roles.id, "timestamp": roles.timestamp}
    given = [(option, column) for option, column in named.items() if column]
    for option, column in given:
        if column not in frame.columns:
            raise InputError(
                path, column, f"no such column (--{option}); columns: {', '.join(frame.columns)}"
            )
    columns = [c for _, c in given]
    if len(set(columns)) < len(columns):
        raise InputError(path, None, "--label, --id and --timestamp must name distinct columns")
    others = [c for c in frame.columns if c not in columns]
    features = tuple(c for c in others if _numeric(frame[c]))
    left_out = tuple(c for c in others if c not in features)
    if not features:
        raise InputError(path, None, "no numeric column besides --label, --id, --timestamp")
    return Schema(features, roles.label, roles.id or None, roles.timestamp or None), left_out


def _numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def _split(
    path: Path, frame: pd.DataFrame, schema: Schema, seed: int
) -> tuple[dict[str, np.ndarray], str]:
    """Row positions per part, and how they were chosen, in words.

    By time, the holdout is the latest rows, as production meets them. Without a time,
    rows are drawn at random, stratified so each part keeps the file's anomaly share.
    """
    assert schema.label is not None
    if len(frame) < MIN_ROWS:
        raise InputError(path, None, f"has {len(frame)} rows; init needs at least {MIN_ROWS}")
    labels = frame[schema.label].to_numpy().astype(np.int64)
    later = SHARES["batch"] + SHARES["holdout"]
    holdout_of_later = SHARES["holdout"] / later
    if schema.timestamp:
        times = frame[schema.timestamp].to_numpy()
        reference, rest = time_split(times, later)
        batch, holdout = time_split(times[rest], holdout_of_later)
        split = (
            f"split by time ({schema.timestamp}): earliest 60% reference, 20% batch, "
            "latest 20% holdout"
        )
    else:
        reference, rest = stratified_split(labels, later, seed)
        batch, holdout = stratified_split(labels[rest], holdout_of_later, seed)
        split = (
            f"no --timestamp: rows split at random (seed {seed}, runtime.seed), keeping the "
            "anomaly share: 60% reference, 20% batch, 20% holdout"
        )
    parts = {"reference": reference, "batch": rest[batch], "holdout": rest[holdout]}
    for part in ("batch", "holdout"):
        present = set(labels[parts[part]].tolist())
        if present != {0, 1}:
            missing = "anomaly (1)" if 1 not in present else "normal row (0)"
            raise InputError(
                path, schema.label, f"the {part} would hold no {missing}; the pipeline needs both"
            )
    return parts, split


def _times(path: Path, values: pd.Series) -> pd.Series:
    """The time column, text parsed as datetimes so the pipeline orders rows by time."""
    column = str(values.name)
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        try:
            parsed = pd.to_datetime(values, utc=True, format="mixed").dt.tz_convert(None)
        except (ValueError, TypeError) as error:
            raise InputError(path, column, f"cannot be read as times ({error})") from None
    missing = np.flatnonzero(parsed.isna().to_numpy())
    if missing.size:
        raise InputError(path, column, f"missing time at row {int(missing[0])}")
    return parsed


def _id_like(frame: pd.DataFrame, features: tuple[str, ...]) -> list[str]:
    """Notes on integer features that differ on every row: likely ids, not measurements."""
    return [
        f"note: {c} holds a different whole number on every row, like a row id; if it is "
        f"one, rerun with --id {c} --force to leave it out of the features"
        for c in features
        if pd.api.types.is_integer_dtype(frame[c]) and frame[c].is_unique
    ]


def _notes(params: Params, labels: dict[str, np.ndarray]) -> list[str]:
    """What the first run would trip on with today's params, and the threshold's reach."""
    v = params.validation
    notes = []
    batch_rate = float(labels["batch"].mean())
    if not v.min_labeled_anomaly_rate <= batch_rate <= v.max_labeled_anomaly_rate:
        notes.append(
            f"warning: the batch's labeled anomaly rate {batch_rate:.3f} is outside "
            f"validation's [{v.min_labeled_anomaly_rate}, {v.max_labeled_anomaly_rate}]: "
            "validation would reject it; set validation.max_labeled_anomaly_rate in params.yaml"
        )
    if len(labels["batch"]) < v.min_rows:
        notes.append(
            f"warning: the batch has {len(labels['batch'])} rows, fewer than "
            f"validation.min_rows ({v.min_rows}): validation would reject it"
        )
    notes += explain_threshold(params.threshold, float(labels["holdout"].mean())).lines()
    return notes


def data_block(
    source_name: str,
    schema: Schema,
    left_out: tuple[str, ...],
    targets: dict[str, Path],
    incoming: Path,
) -> str:
    """The ``data:`` section for the user's file, every key commented."""
    shares = {part: f"{share:.0%} of rows" for part, share in SHARES.items()}
    if schema.timestamp:
        order = {"reference": "earliest", "batch": "next", "holdout": "latest"}
        when = {part: f"{order[part]} {shares[part]}" for part in SHARES}
    else:
        when = {part: f"{shares[part]} at random" for part in SHARES}
    lines = [
        f"data:                       # written by anomalyflow init from {source_name}",
        "  source: files",
    ]
    if left_out:
        lines.append(f"  # left out, not numeric: {', '.join(left_out)}")
    lines += [
        _entry("features", list(schema.features), "numeric feature columns, in this order"),
        _entry("label", schema.label, "1 = (labeled) anomaly, 0 = normal or unlabeled"),
        _entry("id", schema.id, "row id column (null: none)"),
        _entry("timestamp", schema.timestamp, "time column (null: none)"),
        _entry("reference", str(targets["reference"]), f"{when['reference']}, without labels"),
        _entry("holdout", str(targets["holdout"]), f"{when['holdout']}: judges candidates"),
        _entry("batch", str(targets["batch"]), f"{when['batch']}: taken without --data"),
        _entry("incoming", str(incoming), "folder scheduled runs take batches from"),
    ]
    return "\n".join(lines) + "\n"


def _entry(key: str, value: object, comment: str) -> str:
    """``  key: value  # comment``, the value quoted by PyYAML where YAML needs it."""
    flow = yaml.safe_dump([value], default_flow_style=True, width=1_000_000).strip()
    return f"  {f'{key}: {flow[1:-1]}':<24}  # {comment}"


def replace_data_block(text: str, block: str) -> str:
    """``text`` with its top-level ``data:`` block replaced by ``block`` (appended if none).

    The block runs to the next line that starts in the first column, so the blank lines
    and comments that open the next section stay where they are.
    """
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"data:(\s|$)", line)), None)
    if start is None:
        return text + ("" if text.endswith("\n") or not text else "\n") + "\n" + block
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t"):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return "".join(lines[:start]) + block + "".join(lines[end:])


def _slug(stem: str) -> str:
    """A folder name from the file's stem: letters, digits, ``.``, ``-`` and ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "data"
