"""``anomalyflow init``: point the pipeline at one CSV or Parquet file of the user's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from anomalyflow.cli.common import DEFAULT_PARAMS, Commands, ParamsOption

app = Commands()


@app.command()
def init(
    data: Annotated[Path, typer.Option(help="Your CSV or Parquet file, one row per record.")],
    label: Annotated[
        str, typer.Option(help="Label column: 1 = (labeled) anomaly, 0 = normal or unlabeled.")
    ],
    id_column: Annotated[str | None, typer.Option("--id", help="Row id column.")] = None,
    timestamp: Annotated[
        str | None, typer.Option(help="Time column; without it rows are split at random.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace a data section that points at files, and its files.")
    ] = False,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Split DATA into reference, batch and holdout and write params.yaml's data section.

    Numeric columns become features; the others are named and left out. Rows are split
    by time with --timestamp (the latest become the holdout), else at random, seeded.
    Other sections of params.yaml, and their comments, are kept as they are.
    """
    from anomalyflow.project_init import Roles, init_project

    result = init_project(data, Roles(label, id_column, timestamp), params_path, force=force)
    typer.echo("\n".join(result.lines(params_path)))
