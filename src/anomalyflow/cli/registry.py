"""Commands over the model registry: list versions, promote, roll back, shadow-compare."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from anomalyflow.cli.common import DEFAULT_PARAMS, Commands, ParamsOption, configured, fail
from anomalyflow.errors import Refusal
from anomalyflow.notify import notify
from anomalyflow.params import Params, load_params

if TYPE_CHECKING:
    from anomalyflow.registry.store import Registry

app = Commands()
ReasonOption = Annotated[str | None, typer.Option(help="Why; recorded in the audit log.")]


def open_configured_registry(params: Params) -> Registry:
    """The configured model name's registry (``registry.model_name``, or the name derived
    from ``data:``'s features) in BentoML's model store under ``registry.bentoml_home``."""
    from anomalyflow.pipeline.production import project_registry

    return project_registry(params)


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """List registered versions: stage, gate, metrics, who promoted them, data version."""
    import json

    from anomalyflow.registry.model_version import unfinished_promotion

    registry = open_configured_registry(load_params(params_path))
    versions = registry.versions()
    gone = registry.missing()  # listing the rest alone would hide a lost production
    if gone:
        state = registry.state()
        named = [f"{v} ({state.stage_of(v)})" for v in gone]
        fail(
            f"{registry.models.root}: the folders of registered versions are missing: "
            f"{', '.join(named)}; restore them from a backup"
        )
    promoted = {e["version"]: e for e in registry.history() if e["action"] == "promote"}
    listed = [v.to_dict() | _promotion(promoted.get(v.version)) for v in versions]
    if as_json:
        typer.echo(json.dumps(listed, indent=2))
        return
    auto = load_params(params_path).registry.approval == "auto"
    unfinished = unfinished_promotion(versions) if auto else None
    if unfinished:
        typer.echo(f"{unfinished} passed its gate but was never promoted: `promote` finishes it")
    typer.echo(f"Model {registry.name} in {registry.home}")
    if not versions:
        _no_versions(registry)
        return
    typer.echo(
        f"{'version':<18}{'stage':<12}{'gate':<8}{'auprc':>7}{'auroc':>7}  "
        f"{'created (UTC)':<21}{'data':<14}promoted by"
    )
    for v, shown in zip(versions, listed, strict=True):
        auprc, auroc = (v.metrics.get(k, float("nan")) for k in ("auprc", "auroc"))
        by = (shown["promoted_by"] or "") + (" (FORCED)" if shown["forced"] else "")
        typer.echo(
            f"{v.version:<18}{v.stage:<12}{'passed' if v.gate_passed else 'failed':<8}"
            f"{auprc:>7.3f}{auroc:>7.3f}  {v.created:%Y-%m-%d %H:%M:%S}  "
            f"{v.data_version[:12]:<14}{by}"
        )


def _no_versions(registry: Registry) -> None:
    """Say so, and name the other model names' productions: another data set's, or the
    one registered before model names existed (``registry.model_name`` picks it)."""
    from anomalyflow.pipeline.production import other_productions

    typer.echo("No registered versions of it yet; `anomalyflow run` adds one.")
    for name, version in other_productions(registry).items():
        typer.echo(f"  other model here: {name} (production {version})")


def _promotion(entry: dict[str, object] | None) -> dict[str, object]:
    """Who last promoted a version and whether it was forced past its gate."""
    if entry is None:
        return {"promoted_by": None, "promoted_at": None, "forced": False}
    forced = bool(entry.get("forced", False))
    return {"promoted_by": entry["actor"], "promoted_at": entry["at"], "forced": forced}


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to make production.")],
    force: Annotated[
        bool, typer.Option(help="Promote even though its gate failed (needs --reason).")
    ] = False,
    reason: ReasonOption = None,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Make VERSION production (after a serving smoke test) and archive the previous one."""
    from anomalyflow.pipeline.register import promote as promote_version

    params = configured(params_path)
    registry = open_configured_registry(params)
    chosen = registry.resolve(version)
    typer.echo(f"Smoke-testing the service with {chosen} of model {registry.name} ...")
    try:
        state = promote_version(
            registry, params_path, chosen, force=force, reason=reason, say=typer.echo
        )
    except Refusal as error:
        fail(f"{error}; production is unchanged")
    archived = state.previous[-1] if state.previous else None
    typer.echo(
        f"{state.production} is production"
        + (f"; {archived} archived" if archived else "")
        + ". A running service picks it up at its next request."
    )


@app.command()
def rollback(
    force: Annotated[bool, typer.Option(help="Allow a gate-failed one (needs --reason).")] = False,
    reason: ReasonOption = None,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Restore the previous production version in one step."""
    params = configured(params_path)
    registry = open_configured_registry(params)
    state = registry.rollback(reason=reason, force=force)
    left = registry.history()[-1]["previous_production"]  # as the rollback recorded it
    typer.echo(f"{state.production} is production of {registry.name} again; {left} archived.")
    notify(params.notify, "rollback", version=state.production, replaced=left, reason=reason)


@app.command()
def history(
    version: Annotated[
        str | None, typer.Argument(help="Only this version (a prefix, production, ...).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of events.")] = False,
    verify: Annotated[
        bool, typer.Option(help="Only check the audit log's hash chain and say so.")
    ] = False,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Every registration, promotion, rollback, approval and override, newest first."""
    import json

    registry = open_configured_registry(load_params(params_path))
    events = registry.history()[::-1]  # verifies every line and the chain first
    if verify:
        typer.echo(f"{registry.audit_log}: {len(events)} entries, hash chain intact")
        return
    if version is not None:
        chosen = registry.resolve(version)
        events = [e for e in events if e["version"] == chosen]
    if as_json:
        typer.echo(json.dumps(events, indent=2))
        return
    typer.echo(f"History of model {registry.name} ({registry.audit_log})")
    typer.echo(f"{'when (UTC)':<20} {'action':<9} {'version':<18} {'gate':<7} {'by':<22} why")
    for e in events:
        why = ("FORCED: " if e.get("forced") else "") + (e.get("reason") or "")
        typer.echo(
            f"{str(e['at'])[:19].replace('T', ' '):<20} {e['action']:<9} "
            f"{e['version']:<18} {e.get('gate') or '':<7} {e['actor']:<22} {why}"
        )


@app.command()
def shadow(
    input_file: Annotated[Path, typer.Option("--input", help="CSV or Parquet batch.")],
    candidate: Annotated[
        str | None, typer.Option(help="Version to compare (default: the newest candidate).")
    ] = None,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Score a batch with production and a candidate; report where they disagree."""
    from anomalyflow.paths import ArtifactPaths
    from anomalyflow.pipeline.shadow import shadow as compare

    params = configured(params_path)
    paths = ArtifactPaths.from_params(params.paths, params.data)
    comparison = compare(input_file, candidate, params, paths)
    flags = comparison["flags"]
    typer.echo(
        f"Production {comparison['production']} vs candidate {comparison['candidate']} on "
        f"{comparison['rows']} rows: both flag {flags['both']}, only production "
        f"{flags['production_only']}, only the candidate {flags['candidate_only']} "
        f"(disagreement {comparison['disagreement_rate']:.2%}); {paths.shadow}"
    )
    if (paths.candidate / "detector.json").exists():  # the latest run's page, with it added
        from anomalyflow.pipeline.context import RunContext
        from anomalyflow.pipeline.review import build_review_page

        typer.echo(f"Report: {build_review_page(RunContext.prepare(params_path))}")
