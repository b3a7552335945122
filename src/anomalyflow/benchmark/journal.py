"""A benchmark's journal: each finished unit's outcomes, one JSON line, written as it ends.

A run at every budget is hours of work; killed half-way (or run on another machine's
cores) it must not start over. The journal's first line records what the run is (label
budget, row cap, test share, methods, detector settings, each data set's SHA-256, the
code's SHA-256 and the libraries' versions); a resumed run reuses its units only when
that record is exactly the new run's, so a unit is never mixed into a run it was not
part of. A last line cut short by a kill is dropped (that
unit runs again); damage anywhere else is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from anomalyflow.atomic import write_text
from anomalyflow.benchmark.protocol import Outcome
from anomalyflow.errors import Refusal

FORMAT = 1

UnitKey = tuple[str, int]
"""A unit: the data set's name and the seed."""


class JournalRefused(Refusal):
    """A journal that cannot be used: another run's, damaged, or (unasked) one to replace."""


@dataclass
class Journal:
    """The outcomes of the units finished so far, and the file they are appended to."""

    path: Path
    units: dict[UnitKey, list[Outcome]] = field(default_factory=dict)

    @classmethod
    def start(cls, path: Path, run: dict[str, Any], resume: bool) -> Journal:
        """Open ``path`` for ``run``: a new journal, or with ``resume`` the one there.

        Raises:
            JournalRefused: resuming a journal of another run, or a damaged one; or,
                without ``resume``, a journal there that holds finished units (hours of
                work are not thrown away unasked).
        """
        run = as_recorded(run)
        header = json.dumps({"journal": FORMAT, "run": run}, sort_keys=True)
        if not path.exists() or (not resume and _units_in(path) == 0):
            write_text(path, header + "\n")
            return cls(path)
        if not resume:
            raise JournalRefused(
                f"{path} holds {_units_in(path)} finished units of a run: pass --resume to "
                "keep them (the same command goes on), or remove the file to start over"
            )
        recorded, units = read_journal(path)
        _check_same_run(path, recorded, run)
        complete, _, cut_short = path.read_text().rpartition("\n")
        if cut_short:  # a last line a kill cut short: that unit runs again
            write_text(path, complete + "\n")
        return cls(path, units)

    def record(self, outcomes: list[Outcome]) -> None:
        """Append one finished unit's outcomes, on disk before this returns."""
        entry = {"outcomes": [asdict(o) for o in outcomes]}
        with self.path.open("a") as file:
            file.write(json.dumps(entry) + "\n")
            file.flush()
            os.fsync(file.fileno())
        self._keep(entry)

    def _keep(self, entry: dict[str, Any]) -> None:
        outcomes = _unit(entry)
        self.units[(outcomes[0].dataset, outcomes[0].seed)] = outcomes


def as_recorded(run: dict[str, Any]) -> dict[str, Any]:
    """A run description as it reads back from a journal's header (paths as strings)."""
    recorded: dict[str, Any] = json.loads(json.dumps(run, default=str))
    return recorded


def read_journal(path: Path) -> tuple[dict[str, Any], dict[UnitKey, list[Outcome]]]:
    """A journal's run description and finished units (a last line cut short left out).

    Raises:
        JournalRefused: a file that cannot be read, or is not a journal, or holds a
            damaged line before the last.
    """
    try:
        text = path.read_text()
    except OSError as error:
        raise JournalRefused(f"{path}: cannot be read ({error.strerror})") from None
    lines = text.rpartition("\n")[0].split("\n")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("journal") != FORMAT:
        raise JournalRefused(f"{path}: line 1 is not a benchmark journal's header")
    units: dict[UnitKey, list[Outcome]] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            outcomes = _unit(json.loads(line))
        except (ValueError, TypeError, KeyError) as error:
            raise JournalRefused(
                f"{path}: line {number} is not a unit's outcomes ({error}); "
                "the file is damaged: delete it, or run without it"
            ) from None
        units[(outcomes[0].dataset, outcomes[0].seed)] = outcomes
    return dict(header.get("run", {})), units


def _unit(entry: dict[str, Any]) -> list[Outcome]:
    """One journal line's outcomes: one unit's, at least one."""
    outcomes = [Outcome(**o) for o in entry["outcomes"]]
    if not outcomes:
        raise ValueError("no outcomes")
    return outcomes


def _units_in(path: Path) -> int:
    """Lines after the header: finished units (a last one cut short counted too)."""
    return max(0, len(path.read_text().splitlines()) - 1)


def _check_same_run(path: Path, recorded: dict[str, Any], run: dict[str, Any]) -> None:
    """Refuse a journal recorded for another ``run``, naming what differs."""
    differ = sorted(k for k in run.keys() | recorded.keys() if recorded.get(k) != run.get(k))
    if differ:
        raise JournalRefused(
            f"{path} is another run's ({', '.join(differ)} differ); resume only the same "
            "command, or run without --resume to start a new journal"
        )
