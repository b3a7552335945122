"""What differs between production's run and this one: params and data versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ABSENT = "(absent)"
# Lineage keys that name data, in the order a reviewer reads them.
DATA_KEYS = ("batch_md5", "reference_md5", "holdout_md5")


@dataclass(frozen=True)
class Change:
    """One dotted key whose value differs; ``ABSENT`` where one side lacks the key."""

    key: str  # e.g. "finetune.max_epochs"
    old: str  # production's run
    new: str  # this run


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (``{"a": {"b": 1}}`` → ``{"a.b": 1}``); lists stay whole."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat |= flatten(value, dotted + ".")
        else:
            flat[dotted] = value
    return flat


def params_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every param whose value differs between two decision records' params, by key.

    Values are compared as JSON, the form the records are stored in, so a tuple in
    this run's params equals the list production's record holds.
    """
    before, after = flatten(_as_json(old)), flatten(_as_json(new))
    return [
        Change(key, _shown(before, key), _shown(after, key))
        for key in sorted(before.keys() | after.keys())
        if before.get(key, ABSENT) != after.get(key, ABSENT)
    ]


def data_versions(
    candidate: dict[str, Any], production: dict[str, Any] | None
) -> list[tuple[str, str, str | None]]:
    """``(key, candidate's hash, production's hash or None)`` for the data and model lineage.

    The data keys come first; then every other lineage hash either side holds.
    """
    theirs = production or {}
    others = sorted((candidate.keys() | theirs.keys()) - set(DATA_KEYS))
    rows = []
    for key in (*DATA_KEYS, *others):
        if key in candidate or key in theirs:
            mine = str(candidate.get(key, ABSENT))
            rows.append((key, mine, str(theirs.get(key, ABSENT)) if production else None))
    return rows


def _as_json(tree: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(tree, default=str))  # type: ignore[no-any-return]


def _shown(flat: dict[str, Any], key: str) -> str:
    if key not in flat:
        return ABSENT
    value = flat[key]
    return value if isinstance(value, str) else json.dumps(value)
