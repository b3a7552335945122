"""Hashes that tie an artifact to what produced it: files, params and the commit."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from anomalyflow.params import Params


def file_digest(path: Path) -> str:
    """MD5 of a file, the hash DVC records for it."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def params_digest(params: Params) -> str:
    """Hash of every knob, to notice a changed ``params.yaml``."""
    return _digest(asdict(params))


def pretrain_fingerprint(params: Params, reference: Path) -> str:
    """Hash of all that shapes the backbone: a changed one means pretraining again."""
    return _digest(
        {
            "model": asdict(params.model),
            "pretrain": asdict(params.pretrain),
            "seed": params.runtime.seed,
            "reference": file_digest(reference),
        }
    )


def git_commit() -> str | None:
    """The checked-out commit, for the decision record; None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def check_key(
    params: Params, reference: Path, batch: Path, accepted: tuple[Path, ...]
) -> tuple[str, ...]:
    """What a run checks a batch against: the batch, the params, the reference data, and
    the folders of accepted data (late labels change them)."""
    listing = "".join(_listing(folder) for folder in accepted)
    return file_digest(batch), params_digest(params), file_digest(reference), listing


def _listing(folder: Path) -> str:
    """Names, sizes and times of a folder's files: cheap, and changed by any write."""
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
    return _digest(
        [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    )


TRAINING_SECTIONS = ("data", "synthetic", "model", "pretrain", "finetune", "threshold")


def training_digest(params: Params) -> str:
    """Hash of the knobs that shape a trained model.

    The gate, registry, serving and drift sections decide what happens to a model, not
    what it is: changing only them must not retrain a copy of the same weights.
    """
    shaping = {section: asdict(getattr(params, section)) for section in TRAINING_SECTIONS}
    return _digest(
        shaping | {"seed": params.runtime.seed, "seeds": params.orchestration.finetune_seeds}
    )
