"""The one stage list: dvc.yaml, the CLI and params all follow from it."""

from __future__ import annotations

from dataclasses import fields, is_dataclass

import typer.main

from anomalyflow.cli import app
from anomalyflow.params import Params
from anomalyflow.pipeline.stages import STAGES, dvc_yaml
from tests.conftest import REPO


def test_the_checked_in_dvc_yaml_is_generated_from_the_stage_list() -> None:
    assert (REPO / "dvc.yaml").read_text() == dvc_yaml(), (
        "dvc.yaml is stale: run `anomalyflow dvc-stages --write`"
    )


def test_every_stage_has_its_command() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert {stage.command for stage in STAGES} <= set(commands)


def test_every_params_key_a_stage_depends_on_exists() -> None:
    """A typo in a stage's params would make DVC fail, or never rerun the stage."""
    for stage in STAGES:
        for dotted in stage.params:
            node: object = Params()
            for key in dotted.split("."):
                assert is_dataclass(node), f"{stage.name}: {dotted}"
                assert key in {f.name for f in fields(node)}, f"{stage.name}: {dotted}"
                node = getattr(node, key)
