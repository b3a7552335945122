"""The one place every command loads params, configures the runtime and refuses bad input.

Our refusals (:class:`anomalyflow.errors.Refusal`: bad params, data, files, registry
actions) end a command with one line on stderr and exit code 2, and nothing else.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from anomalyflow.errors import Refusal, debugging
from anomalyflow.params import Params, load_params
from anomalyflow.telemetry import disable_telemetry

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

ParamsOption = Annotated[Path, typer.Option("--params", help="Path to params.yaml.")]
VersionOption = Annotated[
    str | None, typer.Option("--model", help="Registered version (default: production).")
]
DEFAULT_PARAMS = Path("params.yaml")


def fail(message: str) -> NoReturn:
    """End the command: the message on stderr, exit code 2."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def refusing(command: Callable[P, R]) -> Callable[P, R]:
    """Turn our refusals raised inside ``command`` into one line and exit code 2.

    With ``--debug`` (``ANOMALYFLOW_DEBUG=1``) the refusal keeps its traceback.
    """

    @functools.wraps(command)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except Refusal as error:
            if debugging():
                raise
            fail(str(error))

    return guarded


class Commands(typer.Typer):
    """A sub-app whose every command is :func:`refusing`: no command can forget it."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """Register the decorated function, guarded, as ``typer.Typer.command`` would."""
        register = super().command(*args, **kwargs)

        def decorate(command: F) -> F:
            register(refusing(command))
            return command

        return decorate


def _refuse_files_and_folders_swapped(params_file: Path, params: Params) -> None:
    """A folder where a file belongs (or the reverse) is found only mid-run otherwise, as a
    traceback once Prefect is up."""
    folders = {
        "paths.artifacts_dir": params.paths.artifacts_dir,
        "paths.data_dir": params.paths.data_dir,
        "data.incoming": params.data.incoming,
    }
    for key, folder in folders.items():
        if Path(folder).exists() and not Path(folder).is_dir():
            fail(f"{params_file}: '{key}' = {folder!r}: names a file; it must be a folder")
    for key in ("reference", "holdout", "batch"):
        if Path(file := getattr(params.data, key)).is_dir():
            fail(f"{params_file}: 'data.{key}' = {file!r}: is a folder; it must name a file")


def configured(params_file: Path) -> Params:
    """Load params and set up this process for them: telemetry off, torch threads."""
    import torch

    params = load_params(params_file)
    _refuse_files_and_folders_swapped(params_file, params)
    disable_telemetry()
    # The ephemeral Prefect API migrates a fresh database for 12-15 s on 2 cores; on a
    # busy machine Prefect's 20 s start-up limit is too tight.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    if params.runtime.num_threads > 0:
        torch.set_num_threads(params.runtime.num_threads)
    return params
