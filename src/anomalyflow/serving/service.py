"""The BentoML service: scores JSON records with the production model.

``bentoml serve anomalyflow.serving.service:AnomalyService`` (or ``anomalyflow serve``)
loads the production version of one model name at start-up (``ANOMALYFLOW_MODEL_NAME``,
else the name params configure), or the version named by ``ANOMALYFLOW_MODEL_VERSION``
(the promotion smoke test serves a candidate that way).
Before anything listens, the version's files are verified against the hashes recorded
when it was gated and saved; a version that fails, a bad params file or an empty token
variable stops the server at once with one line on stderr and exit code 2, instead of
workers crashing in a loop while ``/readyz`` hangs.

While serving from the registry it follows promotions and rollbacks: each request
checks the audit log (one ``stat``) and swaps in the new production model between
requests, so nothing is dropped. An audit log that fails verification, or a new
production whose files fail it, switches nothing: the service keeps serving the last
production it verified and logs the refusal once. Inside a built Bento, where there is
no registry, it serves the version packaged with the stage label ``production``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from anomalyflow.telemetry import disable_telemetry

disable_telemetry()

import bentoml  # noqa: E402  (after the telemetry opt-out, which bentoml reads at import)
import numpy as np  # noqa: E402
import pydantic  # noqa: E402
import torch  # noqa: E402
from bentoml.exceptions import NotFound  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402

from anomalyflow.detector import AnomalyDetector  # noqa: E402
from anomalyflow.errors import Refusal  # noqa: E402
from anomalyflow.integrity import IntegrityError  # noqa: E402
from anomalyflow.params import Params, ServingParams, load_params  # noqa: E402
from anomalyflow.pipeline.data import schema_from  # noqa: E402
from anomalyflow.registry.follow import ProductionFollower  # noqa: E402
from anomalyflow.registry.naming import model_name  # noqa: E402
from anomalyflow.registry.store import Registry, bentoml_home  # noqa: E402
from anomalyflow.registry.verify import (  # noqa: E402
    verified_detector,
    verified_graph,
    verified_smoke_rows,
)
from anomalyflow.serving.client_errors import (  # noqa: E402
    BENTOML_HTTP_LOGGER,
    log_client_errors_as_one_line,
)
from anomalyflow.serving.graph import GraphScorer  # noqa: E402
from anomalyflow.serving.guard import MEGABYTE, RequestGuard, api_token  # noqa: E402
from anomalyflow.serving.records import (  # noqa: E402
    RequestRejected,
    finite_scores,
    record_model,
    records_to_matrix,
)
from anomalyflow.serving.server import (  # noqa: E402
    MODEL_NAME,
    PARAMS_FILE,
    PINNED_VERSION,
    TORCH_THREADS,
)
from anomalyflow.serving.tether import SERVER_PID, end_with_parent  # noqa: E402

INLINE_RECORDS = 64  # requests up to this size are scored on the event loop
START_REFUSED = 2  # the exit code of a refused start, as for every refusal


class NothingToServe(Refusal):
    """No version is pinned and none is production."""


def _registry(params: Params) -> Registry:
    """The served model name's registry in BentoML's own home (where bentoml.models looks)."""
    name = os.environ.get(MODEL_NAME) or model_name(
        params.registry, schema_from(params.data).features
    )
    return Registry(bentoml_home(), name)


def _served(registry: Registry) -> tuple[str, str]:
    """Which model name and version to serve: pinned, else production in the registry,
    else, in a home with no registry of ours (a built Bento), the packaged production."""
    pinned = os.environ.get(PINNED_VERSION)
    if pinned:
        return registry.name, registry.resolve(pinned)
    production = registry.state().production
    if production:
        return registry.name, production
    if not (registry.home / "anomalyflow").exists():  # never another project's models
        try:  # the packaged model carries its stage label
            packaged = bentoml.models.list()
        except NotFound:
            packaged = []
        for model in packaged:
            if model.info.labels.get("stage") == "production":
                return str(model.tag.name), str(model.tag.version)
    raise NothingToServe(
        f"no production version of {registry.name} in {registry.home}: run `anomalyflow "
        "run` or `anomalyflow promote VERSION` first"
    )


@dataclass(frozen=True)
class ServedModel:
    """A verified version as served: its detector, and its ONNX graph where it has one."""

    detector: AnomalyDetector
    graph: GraphScorer | None

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Raw scores of checked rows: through the graph if there is one, else torch."""
        return (self.graph or self.detector).decision_function(rows)


def _verified(name: str, version: str) -> ServedModel:
    """The stored version's detector and graph once their files match what was recorded."""
    try:
        stored = bentoml.models.get(f"{name}:{version}")
    except NotFound:
        raise IntegrityError(f"version '{name}:{version}' is not in the model store") from None
    home = bentoml_home()  # where our registry is (not a built Bento's), its log vouches
    ours = (home / "anomalyflow").exists()
    recorded = Registry(home, name).state().record_sha256(version) if ours else None
    detector = verified_detector(Path(stored.path), version, record_sha256=recorded)
    return ServedModel(detector, verified_graph(Path(stored.path), version, detector))


def _params() -> Params:
    """``$ANOMALYFLOW_PARAMS`` (which must exist), else ./params.yaml, else the defaults
    (a built Bento carries no params.yaml)."""
    named = os.environ.get(PARAMS_FILE)
    if named or Path("params.yaml").exists():
        return load_params(named or "params.yaml")
    return Params()


def _record_model(name: str, version: str) -> type[pydantic.BaseModel]:
    """The documented request record: the served features, a smoke-test row as example.
    Loading the version verifies it (:class:`IntegrityError` on a mismatch)."""
    detector = _verified(name, version).detector
    folder = Path(bentoml.models.get(f"{name}:{version}").path)
    rows = verified_smoke_rows(folder, version, detector.n_features_in_)
    return record_model(detector.feature_names_, rows[0])


def _checked_start() -> tuple[
    ServingParams, str | None, Registry, tuple[str, str], type[pydantic.BaseModel]
]:
    """Params, token, the registry, the verified (name, version) to serve and its request
    record, or exit with one line.

    Runs in the server's main process when it imports the service, before any worker
    starts, so a refusal ends the server instead of a worker crashing in a loop.
    """
    try:
        params = _params()
        token = api_token(params.serving.api_token_env)
        registry = _registry(params)
        served = _served(registry)
        record = _record_model(*served)
    except Refusal as refused:
        print(f"anomalyflow serve: refused to start: {refused}", file=sys.stderr, flush=True)
        raise SystemExit(START_REFUSED) from None
    return params.serving, token, registry, served, record


SERVING, TOKEN, REGISTRY, (SERVED_NAME, STARTING_VERSION), Record = _checked_start()


@bentoml.service(name="anomalyflow-service", workers=1, traffic={"timeout": 60})
class AnomalyService:
    """Scores and explains records; reports the features and threshold it expects."""

    packaged_model = bentoml.models.BentoModel(f"{SERVED_NAME}:{STARTING_VERSION}")

    def __init__(self) -> None:
        # Runs in a worker, which BentoML starts in a session of its own: nothing but
        # this ends it if its server is killed outright.
        end_with_parent(int(os.environ.get(SERVER_PID) or os.getppid()))
        log_client_errors_as_one_line()  # here: BentoML has configured logging by now
        self.params = SERVING
        torch.set_num_threads(TORCH_THREADS)
        self.registry = Registry(REGISTRY.home, SERVED_NAME)
        self.follows_registry = not os.environ.get(PINNED_VERSION)
        self._swap = threading.Lock()
        self._follower = ProductionFollower(self.registry)
        name, version = _served(self.registry)
        # One reference swap: a request sees the old pair or the new one, never a mix.
        self.serving = (_verified(name, version), version)

    def _follow_promotions(self) -> tuple[ServedModel, str]:
        """The model to use for this request, after picking up a promotion or rollback."""
        if self.follows_registry and self._follower.changed():
            with self._swap:
                switched = self._follower.switch(
                    self.serving[1], lambda version: _verified(SERVED_NAME, version)
                )
                if switched is not None:
                    version, model = switched
                    self.serving = (model, version)
        return self.serving

    def _matrix(self, model: ServedModel, records: list[dict[str, Any]]) -> Any:
        features = model.detector.feature_names_
        return records_to_matrix(records, features, self.params.max_batch_records)

    async def _answer(
        self,
        route: str,
        work: Callable[[list[dict[str, Any]]], dict[str, Any]],
        records: list[dict[str, Any]],
    ) -> Any:
        """Small requests run on the event loop, where a thread hand-off would cost more
        than the model (2 of a single record's 5 ms); large ones in a worker thread, so
        health checks keep answering meanwhile. The answer is written here as JSON:
        BentoML's own answer path rebuilds the answer type's JSON schema on every
        response, a quarter of a bare BentoML service's CPU time a request. A refused
        request gets every problem found in it, in the service's one 4xx shape, and one
        INFO line in the log.
        """
        try:
            if len(records) <= INLINE_RECORDS:
                return JSONResponse(work(records))
            return await asyncio.to_thread(lambda: JSONResponse(work(records)))
        except RequestRejected as rejected:
            log = logging.getLogger(BENTOML_HTTP_LOGGER)  # beside BentoML's own 4xx lines
            log.info("POST %s answered %d: %s", route, rejected.status, rejected)
            return JSONResponse(rejected.body(), status_code=rejected.status)

    @bentoml.api(route="/score")
    async def score(self, records: list[Record]) -> dict[str, Any]:  # type: ignore[valid-type]
        """Per record: the score, whether it is an anomaly, and the model version."""
        # The schema BentoML shows is the answer's; a refusal (a Response) passes as it is.
        return cast("dict[str, Any]", await self._answer("/score", self._score, _as_dicts(records)))

    @bentoml.api(route="/explain")
    async def explain(self, records: list[Record]) -> dict[str, Any]:  # type: ignore[valid-type]
        """Per record: its score and the features pushing it up the most."""
        return cast(
            "dict[str, Any]", await self._answer("/explain", self._explain, _as_dicts(records))
        )

    @bentoml.api(route="/metadata")
    async def metadata(self) -> dict[str, Any]:
        """The features a record needs, the model version and its threshold."""
        served, version = self._follow_promotions()
        model = served.detector
        return {
            "features": list(model.feature_names_),
            "model_version": version,
            "threshold": model.threshold_,
        }

    def _score(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        served, version = self._follow_promotions()
        rows = self._matrix(served, records)
        scores = finite_scores(served.scores(rows))
        model = served.detector
        return {
            "model_version": version,
            "threshold": model.threshold_,
            "results": [
                {
                    "score": float(s),
                    "is_anomaly": bool(s >= model.threshold_),
                    "model_version": version,
                }
                for s in scores
            ],
        }

    def _explain(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        served, version = self._follow_promotions()
        rows = self._matrix(served, records)
        scores = finite_scores(served.scores(rows))
        model = served.detector
        contributions = finite_scores(model.feature_contributions(rows), "explanation")
        top_k = min(self.params.explain_top_k, rows.shape[1])
        results = []
        for row, score, contribution in zip(rows, scores, contributions, strict=True):
            top = contribution.argsort()[::-1][:top_k]
            results.append(
                {
                    "score": float(score),
                    "is_anomaly": bool(score >= model.threshold_),
                    "top_features": [
                        {
                            "feature": model.feature_names_[i],
                            "value": float(row[i]),
                            "contribution": float(contribution[i]),
                        }
                        for i in top
                    ],
                }
            )
        return {"model_version": version, "results": results}


def _as_dicts(records: list[pydantic.BaseModel]) -> list[dict[str, Any]]:
    """The records as sent: a feature left out stays out (not null), for the checks."""
    return [record.model_dump(exclude_unset=True) for record in records]


# The decorator returns a bentoml.Service, though typed as the class it wraps.
cast("bentoml.Service[AnomalyService]", AnomalyService).add_asgi_middleware(
    RequestGuard, max_body_bytes=int(SERVING.max_body_mb * MEGABYTE), token=TOKEN
)
