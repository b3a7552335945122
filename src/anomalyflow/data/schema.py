"""Which columns are features, label, id and timestamp, and the rules every input obeys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anomalyflow.errors import Refusal


class InputError(Refusal, ValueError):
    """Bad input data: names the file, the column and the rule it broke."""

    def __init__(self, path: Path | str, column: str | None, problem: str) -> None:
        self.path = Path(path)
        self.column = column
        self.problem = problem
        where = f"{self.path}" if column is None else f"{self.path}: column '{column}'"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Schema:
    """Column roles of a table. Features must be numeric (encode categories as codes)."""

    features: tuple[str, ...]
    label: str | None = None  # 1 = (labeled) anomaly, 0 = normal or unlabeled
    id: str | None = None
    timestamp: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the schema knows, in a stable order."""
        extra = (c for c in (self.id, self.timestamp, self.label) if c is not None)
        return (*self.features, *extra)

    def without_label(self) -> Schema:
        """The same schema for unlabeled data."""
        return Schema(self.features, None, self.id, self.timestamp)
