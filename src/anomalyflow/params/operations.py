"""Sections about running the pipeline: orchestration, devices, paths, the benchmark,
the model registry, serving and notifications."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator
from pydantic.dataclasses import dataclass

from anomalyflow.params.kinds import CONFIG, Count, OpenShare, Positive, Whole
from anomalyflow.params_file import KeyRule


@dataclass(frozen=True, config=CONFIG)
class OrchestrationParams:
    """How Prefect runs the flow's tasks."""

    task_runner: Literal["threads", "dask"] = "threads"  # dask: through prefect-dask
    finetune_seeds: Count = 1  # fine-tune this many seeds side by side, keep the best
    dask_address: StrictStr = ""  # scheduler of an existing Dask cluster; empty: a local one
    dask_workers: Count = 2  # workers of the local cluster
    partition_rows: Count = 500_000  # dask: validation partitions hold at least this many rows
    drift_sample_rows: Annotated[StrictInt, Field(ge=10_000)] = 100_000  # dask: drift sample size


@dataclass(frozen=True, config=CONFIG)
class RuntimeParams:
    """Where and how reproducibly to compute."""

    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA with bf16 if present
    seed: Whole = 0  # numpy's seeding refuses negative seeds
    num_threads: Whole = 0  # 0: leave torch's default
    progress: StrictBool = True  # progress bars on long loops


@dataclass(frozen=True, config=CONFIG)
class PathsParams:
    """Where the main job reads and writes, relative to the working directory."""

    data_dir: StrictStr = "data"  # holds quarantine/; the data files are the data.* paths
    artifacts_dir: StrictStr = "artifacts"


@dataclass(frozen=True, config=CONFIG)
class BenchmarkParams:
    """The few-label protocol of ``../shared/datasets/README.md``."""

    row_cap: Count = 10_000  # larger data sets are subsampled (stratified), as ADBench does
    test_size: OpenShare = 0.3
    scoring_rows: Count = 200_000  # rows scored to measure scoring throughput


# BentoML's rule for a model name (bentoml/_internal/tag.py), at most 63 characters.
BENTOML_NAME = r"[a-z0-9]([-._a-z0-9]{0,61}[a-z0-9])?"


@dataclass(frozen=True, config=CONFIG)
class RegistryParams:
    """Model versions and stages in the BentoML model store; who approves promotion."""

    bentoml_home: StrictStr = ".bentoml"  # BentoML's home (models, bentos); $BENTOML_HOME wins
    # Each model name has its own versions, production and history. None: derived from
    # the data set's features (anomalyflow.registry.naming), so two data sets never share one.
    model_name: StrictStr | None = None
    approval: Literal["auto", "required"] = "auto"  # required: a person approves in Prefect
    approval_timeout_hours: Positive = 24.0  # an unanswered approval rejects the candidate
    smoke_rows: Count = 64  # holdout rows kept with each version for the serving smoke test

    @model_validator(mode="after")
    def _model_name_fits_bentoml(self) -> Self:
        """Refused now, not by BentoML when it saves the first version after a whole run."""
        if self.model_name is not None and not re.fullmatch(BENTOML_NAME, self.model_name):
            rule = "must be a BentoML model name: up to 63 of a-z, 0-9, '-', '_', '.', "
            rule += "starting and ending with a letter or digit (null: derived)"
            raise KeyRule("model_name", self.model_name, rule)
        return self


@dataclass(frozen=True, config=CONFIG)
class ServingParams:
    """The BentoML service and batch scoring."""

    host: Annotated[StrictStr, Field(min_length=1)] = "127.0.0.1"  # BentoML's is 0.0.0.0
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 3000
    max_batch_records: Count = 10_000  # larger requests get 413
    explain_top_k: Count = 3  # features reported per record by /explain
    chunk_rows: Count = 100_000  # batch scoring reads and writes this many rows at a time
    # a larger request body is refused with 413 before it is held in memory
    max_body_mb: Annotated[StrictFloat, Field(gt=0, le=1024)] = 8.0
    # the environment variable holding the bearer token that /score, /explain and
    # /metadata then require; the token itself never belongs in this (committed) file
    api_token_env: Annotated[StrictStr, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = (
        "ANOMALYFLOW_API_TOKEN"
    )
    # each registered version's scoring network also as an ONNX graph, which the service
    # runs with ONNX Runtime (a record several times cheaper than torch); false: torch
    onnx: StrictBool = True


@dataclass(frozen=True, config=CONFIG)
class NotifyParams:
    """Where events go: promotions, rollbacks, rejections, approvals waiting, drift, failures."""

    webhook_url: StrictStr = ""  # POSTed one JSON event each; empty: no notifications
    timeout_seconds: Positive = 5.0  # a slow receiver never holds a run longer than this
