"""The ``anomalyflow`` command, assembled from sub-apps that each keep their commands
beside the code they drive: the pipeline, the registry, serving, detection quality
and speed benchmarks.

Bad input ends with a one-line error naming the file, key or column and the rule, and
exit code 2 (see :mod:`anomalyflow.cli.common`).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from anomalyflow.cli import benchmarks, init, pipeline, quality, registry, replay, serving
from anomalyflow.errors import DEBUG_VARIABLE

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Pretrain on unlabeled data, fine-tune with few labels, detect anomalies.",
)
app.add_typer(pipeline.app)
app.add_typer(registry.app)
app.add_typer(serving.app)
app.add_typer(replay.app)
app.add_typer(quality.app)
app.add_typer(benchmarks.app)
app.add_typer(init.app)


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option(help=f"Show the traceback of a refusal too (or set {DEBUG_VARIABLE}=1).")
    ] = False,
) -> None:
    """Pretrain on unlabeled data, fine-tune with few labels, detect anomalies."""
    if debug:
        os.environ[DEBUG_VARIABLE] = "1"  # child processes (DVC stages, services) see it too
