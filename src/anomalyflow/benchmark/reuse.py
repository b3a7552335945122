"""Peers' outcomes reused from an earlier run on the same splits.

After a change to AnomalyFlow its peers' outcomes have not changed, and running them again
(hours at every budget) only spends the cores. With ``--methods anomalyflow --peers-from
JOURNAL`` the benchmark runs the named methods and takes every other method's outcome of
each unit from JOURNAL, an earlier run's journal, when that run cut the very same splits:
the same label budget, row cap and test share, and the same bytes of every data set. The
report names the journal and the code its outcomes came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anomalyflow.benchmark.journal import UnitKey, as_recorded, read_journal
from anomalyflow.benchmark.protocol import Outcome
from anomalyflow.errors import Refusal


class ReuseRefused(Refusal):
    """An earlier run whose outcomes cannot stand beside this run's."""


@dataclass(frozen=True)
class Reused:
    """Outcomes taken from an earlier journal, per unit, and where they came from."""

    units: dict[UnitKey, list[Outcome]]
    source: dict[str, Any]  # journal, its code's SHA-256, the methods taken


def reused_outcomes(path: Path, run: dict[str, Any], units: list[UnitKey], ran: set[str]) -> Reused:
    """Every method but ``ran`` on each of ``units``, from the journal at ``path``.

    Raises:
        ReuseRefused: the journal's splits are not this ``run``'s (another budget, a data
            set with other bytes or absent), or it lacks one of ``units``.
    """
    recorded, finished = read_journal(path)
    run = as_recorded(run)
    if recorded.get("budget") != run["budget"]:
        raise ReuseRefused(
            f"{path}: its budget {recorded.get('budget')} is not this run's {run['budget']}"
        )
    theirs = recorded.get("data", {})
    for name, sha256 in run["data"].items():
        if theirs.get(name) != sha256:
            raise ReuseRefused(f"{path}: data set {name} is not the same file as in that run")
    missing = [f"{name} seed {seed}" for name, seed in units if (name, seed) not in finished]
    if missing:
        raise ReuseRefused(f"{path}: lacks {len(missing)} units ({', '.join(missing[:3])} ...)")
    taken = {unit: [o for o in finished[unit] if o.method not in ran] for unit in units}
    methods = sorted({o.method for outcomes in taken.values() for o in outcomes})
    return Reused(taken, {"journal": str(path), "code": recorded.get("code"), "methods": methods})
