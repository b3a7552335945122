"""The data stage: the reference, batch and holdout a run stands on, in place and sound."""

from __future__ import annotations

from anomalyflow.data import synthetic
from anomalyflow.data.loaders import read_reference, read_table
from anomalyflow.data.schema import InputError, Schema
from anomalyflow.params import DataParams, Params
from anomalyflow.paths import ArtifactPaths

SYNTHETIC_SCHEMA = Schema(
    features=synthetic.FEATURES,
    label=synthetic.LABEL,
    id=synthetic.ID,
    timestamp=synthetic.TIMESTAMP,
)


def schema_from(data: DataParams) -> Schema:
    """Column roles: the built-in data set's, or those ``data`` names in the user's files."""
    if data.source == "synthetic":
        return SYNTHETIC_SCHEMA
    return Schema(data.features, data.label, data.id or None, data.timestamp or None)


def prepare_data(params: Params, paths: ArtifactPaths, regenerate: bool = False) -> Schema:
    """The run's schema, with its reference and holdout in place and sound.

    The built-in data is generated on first use (and again with ``regenerate``). Both
    files are read and checked now, so a missing file or column stops a run before it
    writes anything.

    Raises:
        InputError: naming the file, the column and the rule it broke.
    """
    if params.data.source == "synthetic":
        generated = {"history": paths.reference, "recent": paths.batch, "holdout": paths.holdout}
        if regenerate or not all(p.exists() for p in generated.values()):
            synthetic.write_parquet(synthetic.generate(params.synthetic), generated)
    schema = schema_from(params.data)
    read_reference(paths.reference, schema)
    holdout = read_table(paths.holdout, schema)
    assert holdout.y is not None and schema.label is not None
    if holdout.y.min() == holdout.y.max():
        raise InputError(
            paths.holdout, schema.label, "the holdout needs both anomalies (1) and normal rows (0)"
        )
    return schema
