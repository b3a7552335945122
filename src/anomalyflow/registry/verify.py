"""A stored version's files, checked against what was recorded when it was gated and saved.

Two records vouch for a version's weights: the MD5 the gate took of the candidate's
``weights.safetensors`` (``lineage.candidate_weights_md5`` in ``decision.json``), and the
SHA-256 of the weights and scaler that :meth:`AnomalyDetector.load` checks
(``detector.json``, itself hashed in ``lineage.detector_json_sha256`` at registration). A
version passes only when all still match; anything else is an :class:`IntegrityError`
naming the version, so no corrupted, truncated or swapped model
is promoted, restored by a rollback, served or used to score.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anomalyflow.integrity import IntegrityError, file_sha256, read_json_object
from anomalyflow.params import RuntimeParams

if TYPE_CHECKING:  # torch loads only where a model does
    from anomalyflow.detector import AnomalyDetector
    from anomalyflow.serving.graph import GraphScorer

WEIGHTS = "weights.safetensors"
WEIGHTS_MD5 = "candidate_weights_md5"  # the key the gate writes in decision.json's lineage
DESCRIPTION = "detector.json"
DESCRIPTION_SHA256 = "detector_json_sha256"  # its key, written at registration


def weights_md5(detector_dir: Path) -> str:
    """MD5 of a detector folder's weights, the hash the gate records (as DVC does)."""
    with (detector_dir / WEIGHTS).open("rb") as stream:
        return hashlib.file_digest(stream, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def with_weights_md5(decision: dict[str, Any], candidate_dir: Path) -> dict[str, Any]:
    """``decision`` with its lineage's hashes of the weights and of ``detector.json``,
    checked against ``candidate_dir``.

    A decision that names the weights hash must name these weights: registering other
    weights than the gate passed is refused. One without it (a registration outside the
    pipeline) gets the hash of the files registered, so every stored version has one.
    ``detector.json`` (threshold, feature order, settings) is hashed at registration.
    """
    actual = weights_md5(candidate_dir)
    lineage = dict(decision.get("lineage") or {})
    recorded = lineage.setdefault(WEIGHTS_MD5, actual)
    if recorded != actual:
        raise IntegrityError(
            f"{candidate_dir / WEIGHTS}: MD5 {actual} differs from the {recorded} the gate "
            "passed (the candidate changed after the gate); nothing was registered"
        )
    description = file_sha256(candidate_dir / DESCRIPTION)
    if lineage.setdefault(DESCRIPTION_SHA256, description) != description:
        raise IntegrityError(f"{candidate_dir / DESCRIPTION}: changed while it was registered")
    return decision | {"lineage": lineage}


def verified_detector(
    folder: Path,
    version: str,
    runtime: RuntimeParams | None = None,
    record_sha256: str | None = None,
) -> AnomalyDetector:
    """The detector of the version stored in ``folder``, once its files check out.

    Args:
        folder: the version's model folder (``detector/``, ``decision.json``).
        version: its name, for the refusal.
        runtime: overrides the saved device settings (as :meth:`AnomalyDetector.load`).
        record_sha256: the SHA-256 of ``decision.json`` that the audit log's register line
            recorded; it ties the files to the version's name (another version's files,
            copied in whole, check out against their own records).

    Raises:
        IntegrityError: naming the version and the file that does not match.
    """
    detector_dir = folder / "detector"
    try:
        record = folder / "decision.json"
        if record_sha256 is not None and file_sha256(record) != record_sha256:
            raise IntegrityError(
                f"{record}: SHA-256 differs from the one the audit log recorded when the "
                "version was registered (its files were replaced)"
            )
        recorded = recorded_weights_md5(folder)
        actual = weights_md5(detector_dir)
        if actual != recorded:
            raise IntegrityError(
                f"{detector_dir / WEIGHTS}: MD5 {actual} differs from the {recorded} "
                "recorded when it passed the gate (the file is corrupted or was replaced)"
            )
        _check_description(folder)
        from anomalyflow.detector import AnomalyDetector

        return AnomalyDetector.load(detector_dir, runtime)
    except (IntegrityError, OSError) as failed:
        raise IntegrityError(f"version '{version}' fails verification: {failed}") from None
    except (KeyError, ValueError, RuntimeError) as failed:  # files that match but won't load
        raise IntegrityError(f"version '{version}' cannot be loaded: {failed}") from None


def verified_graph(folder: Path, version: str, detector: AnomalyDetector) -> GraphScorer | None:
    """The version's ONNX scoring graph once its SHA-256 matches the one its decision
    record names; None for a version registered without one (``serving.onnx: false``).

    Raises:
        IntegrityError: naming the version, when the graph is missing or changed.
    """
    from anomalyflow.serving.graph import GRAPH_SHA256, load_graph

    try:
        recorded = _recorded_lineage(folder).get(GRAPH_SHA256)
        return load_graph(folder / "detector", recorded, detector)
    except IntegrityError as failed:
        raise IntegrityError(f"version '{version}' fails verification: {failed}") from None


def _recorded_lineage(folder: Path) -> dict[str, Any]:
    path = folder / "decision.json"
    lineage = read_json_object(path).get("lineage", {})
    if not isinstance(lineage, dict):
        raise IntegrityError(f"{path}: lineage is not a mapping")
    return lineage


def _check_description(folder: Path) -> None:
    """``detector.json`` as registered: an edited threshold or feature order scores every
    row differently without a word. Versions registered before its hash was recorded
    have none to check."""
    recorded = _recorded_lineage(folder).get(DESCRIPTION_SHA256)
    path = folder / "detector" / DESCRIPTION
    if recorded is not None and file_sha256(path) != recorded:
        raise IntegrityError(
            f"{path}: SHA-256 differs from the one recorded when the version was registered "
            "(threshold, features or settings were changed)"
        )


def recorded_weights_md5(folder: Path) -> str:
    """The weights MD5 the version in ``folder`` records, or a refusal naming its file."""
    path = folder / "decision.json"
    recorded = _recorded_lineage(folder).get(WEIGHTS_MD5)
    if not isinstance(recorded, str):
        raise IntegrityError(f"{path}: no lineage.{WEIGHTS_MD5}, so the weights cannot be checked")
    return recorded


def verified_smoke_rows(folder: Path, version: str, n_features: int) -> np.ndarray:
    """The version's smoke rows (``smoke.npy``), refused naming the file when they cannot
    be read or are no rows of its ``n_features`` features: the smoke test and the
    service's request example read them."""
    path = folder / "smoke.npy"
    try:
        rows: np.ndarray = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise IntegrityError(f"version '{version}': {path}: cannot be read ({error})") from None
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != n_features:
        raise IntegrityError(
            f"version '{version}': {path}: holds an array of shape {rows.shape}, not rows of "
            f"its {n_features} features"
        )
    return rows
