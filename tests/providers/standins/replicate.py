"""A stand-in for Replicate's HTTP API (api.replicate.com), faithful to the `replicate` client 1.0.x.

Each GET of a prediction moves it one step: `starting` once per `queue_polls`, `processing`
once per entry of `progress_logs` (logs accumulate, tqdm lines show progress), then `succeeded`
with `output`, or `failed` with `error`. `Prefer: wait` (the client's `run` sends it) answers
the creation with the prediction already finished, as the real sync mode does for fast models.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._server import PNG, Scripted, base_url, pause


@dataclass
class ReplicateBehaviour:
    queue_polls: int = 0
    progress_logs: tuple[str, ...] = ()
    failure: str | None = None
    """The model's error: the prediction ends `failed` with it."""
    submit_errors: list[Scripted] = field(default_factory=list)
    submit_delay: float = 0.0
    output: Callable[[str, str], Any] | None = None
    """Builds `output` from (base URL, prediction id); default: a list with one PNG URL on this host."""


class ReplicateStandIn:
    def __init__(self, token: str = "r8_test_token"):
        self.token = token
        self.epoch = 0
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/files/{name}", self._file, methods=["GET"]),
                Route("/v1/models/{owner}/{name}/predictions", self._create, methods=["POST"]),
                Route("/v1/predictions", self._create, methods=["POST"]),
                Route("/v1/predictions/{id}", self._get, methods=["GET"]),
                Route("/v1/predictions/{id}/cancel", self._cancel, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        self.epoch += 1  # answers still in flight from the previous test are dropped
        self.behaviour = ReplicateBehaviour()
        self.predictions: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.submissions: list[dict[str, Any]] = []
        self.cancels: list[str] = []

    async def _create(self, request: Request) -> Response:
        if denied := self._deny(request):
            return denied
        if self.behaviour.submit_errors:
            return self.behaviour.submit_errors.pop(0).response()
        started = self.epoch
        await pause(self.behaviour.submit_delay)
        if started != self.epoch:  # the test that wanted this slow answer is over: record nothing
            return Response(status_code=503)
        body = await request.json()
        if not isinstance(body.get("input"), dict):
            return _problem(
                422, "Input validation failed", "- input: Invalid type. Expected: object, given: null"
            )
        owner, name = request.path_params.get("owner"), request.path_params.get("name")
        if owner is None and not body.get("version"):
            return _problem(422, "Invalid version or not permitted", "version is required")
        prediction_id = uuid.uuid4().hex[:26]
        base = base_url(request)
        prediction = {
            "id": prediction_id,
            "model": f"{owner}/{name}" if owner else "someone/model",
            "version": body.get("version") or "hidden",
            "input": body["input"],
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": "starting",
            "created_at": _now(),
            "started_at": None,
            "completed_at": None,
            "urls": {
                "get": f"{base}/v1/predictions/{prediction_id}",
                "cancel": f"{base}/v1/predictions/{prediction_id}/cancel",
                "web": f"{base}/p/{prediction_id}",
            },
            "metrics": {},
        }
        self.predictions[prediction_id] = prediction
        self.polls[prediction_id] = 0
        self.submissions.append(prediction)
        if request.headers.get("prefer", "").startswith("wait"):
            while prediction["status"] not in ("succeeded", "failed", "canceled"):
                self._advance(prediction, base)
        return JSONResponse(prediction, status_code=201)

    async def _get(self, request: Request) -> Response:
        if denied := self._deny(request):
            return denied
        prediction = self.predictions.get(request.path_params["id"])
        if prediction is None:
            return _problem(404, "Not found", "The requested resource could not be found.")
        self._advance(prediction, base_url(request))
        return JSONResponse(prediction)

    async def _cancel(self, request: Request) -> Response:
        if denied := self._deny(request):
            return denied
        prediction = self.predictions.get(request.path_params["id"])
        if prediction is None:
            return _problem(404, "Not found", "The requested resource could not be found.")
        self.cancels.append(prediction["id"])
        if prediction["status"] in ("starting", "processing"):
            prediction.update(status="canceled", completed_at=_now())
        return JSONResponse(prediction)

    async def _file(self, request: Request) -> Response:
        return Response(PNG, media_type="image/png")

    def _advance(self, prediction: dict[str, Any], base: str) -> None:
        if prediction["status"] in ("succeeded", "failed", "canceled"):
            return
        behaviour = self.behaviour
        step = self.polls[prediction["id"]]
        self.polls[prediction["id"]] = step + 1
        if step < behaviour.queue_polls:
            return
        shown = step - behaviour.queue_polls + 1
        prediction["logs"] = "\n".join(behaviour.progress_logs[:shown])
        if shown <= len(behaviour.progress_logs):
            prediction.update(status="processing", started_at=prediction["started_at"] or _now())
            return
        prediction.update(started_at=prediction["started_at"] or _now(), completed_at=_now())
        if behaviour.failure is not None:
            prediction.update(status="failed", error=behaviour.failure)
            return
        build = behaviour.output or (lambda root, pid: [f"{root}/files/{pid}-0.png"])
        prediction.update(
            status="succeeded", output=build(base, prediction["id"]), metrics={"predict_time": 0.01}
        )

    def _deny(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        return None


def _problem(status: int, title: str, detail: str) -> Response:
    return JSONResponse(
        {"title": title, "detail": detail, "status": status},
        status_code=status,
        media_type="application/problem+json",
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
