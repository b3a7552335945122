"""Which model name a project's versions live under: one per data set's features.

Each model name has its own versions, production and audit log, so a project that
points ``data:`` at a second data set starts a second model instead of replacing the
first one's production with a model of other columns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from pathlib import Path

from anomalyflow.params import RegistryParams
from anomalyflow.registry.errors import RegistryError

# Every version registered before model names existed lives under this name, with its
# audit log where it always was; ``registry.model_name: anomalyflow-detector`` keeps it.
LEGACY_MODEL_NAME = "anomalyflow-detector"


def derived_model_name(features: Sequence[str]) -> str:
    """``anomalyflow-<hash>`` of the feature names in order.

    Order counts: the detector reads its columns in that order, and the registry's
    feature guard treats another order as other features. Every feature is numeric and
    scored as float32, so the names alone tell two schemas apart.
    """
    digest = hashlib.sha256("\n".join(features).encode()).hexdigest()
    return f"anomalyflow-{digest[:10]}"


def model_name(registry: RegistryParams, features: Sequence[str]) -> str:
    """``registry.model_name`` when set, else the name derived from ``features``."""
    return registry.model_name or derived_model_name(features)


def audit_log_path(home: Path, name: str) -> Path:
    """Where one model name's audit log lives (the legacy name's where it always was)."""
    if name == LEGACY_MODEL_NAME:
        return home / "anomalyflow" / "audit.jsonl"
    return home / "anomalyflow" / "models" / name / "audit.jsonl"


def the_version_starting(
    ref: str, known: Collection[str], name: str, missing: Collection[str] = ()
) -> str:
    """The one version of ``known`` that is ``ref`` or starts with it; a refusal for none,
    or for a prefix of several (listed: the user gives more of it), or for one of the
    registered versions whose folder is ``missing`` (that, not a typo, is the news)."""
    if ref in known:
        return ref
    matches = sorted(v for v in known if ref and v.startswith(ref))
    gone = [v for v in missing if ref and v.startswith(ref)]
    if gone and not matches:
        raise RegistryError(
            f"version '{gone[0]}' of {name} is registered, but its folder is missing from "
            "the model store: restore it from a backup"
        )
    if not matches:
        raise RegistryError(f"no registered version matches '{ref}' in {name}")
    if len(matches) > 1:
        raise RegistryError(
            f"'{ref}' is ambiguous, it starts {len(matches)} versions: "
            f"{', '.join(matches)}; give more of it"
        )
    return matches[0]
