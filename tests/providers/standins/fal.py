"""A stand-in for fal's queue (queue.fal.run), faithful to what fal-client 1.0.x sends and parses.

Each status poll moves a request one step along its script: `IN_QUEUE` once per entry of
`queue_positions`, `IN_PROGRESS` once per entry of `progress_logs` (logs accumulate), then
`COMPLETED` — with `error`/`error_type` when `failure` is set, in which case the result answers
with the failure's HTTP status and `{"detail": ...}` as fal does.
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
class FalJob:
    request_id: str
    app: str
    endpoint: str
    arguments: dict[str, Any]
    polls: int = 0
    cancelled: bool = False
    completed: bool = False


@dataclass
class FalBehaviour:
    queue_positions: tuple[int, ...] = ()
    progress_logs: tuple[str, ...] = ()
    failure: tuple[int, Any] | None = None
    """(HTTP status, detail) the result answers with, after the status says COMPLETED with an error."""
    submit_errors: list[Scripted] = field(default_factory=list)
    """Answered, in order, to the next submissions instead of queueing them."""
    submit_delay: float = 0.0
    output: Callable[[str, FalJob], Any] | None = None
    """Builds the model output from the stand-in's base URL; default: one PNG on this host."""


def default_output(base: str, job: FalJob) -> dict[str, Any]:
    return {
        "images": [
            {
                "url": f"{base}/files/{job.request_id}.png",
                "content_type": "image/png",
                "width": 1,
                "height": 1,
            }
        ],
        "seed": 42,
        "has_nsfw_concepts": [False],
        "prompt": job.arguments.get("prompt", ""),
    }


class FalStandIn:
    def __init__(self, key: str = "fal-test-key"):
        self.key = key
        self.base_url = ""
        self.epoch = 0
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/files/{name}", self._file, methods=["GET"]),
                Route("/{app:path}/requests/{request_id}/status", self._status, methods=["GET"]),
                Route("/{app:path}/requests/{request_id}/cancel", self._cancel, methods=["PUT"]),
                Route("/{app:path}/requests/{request_id}", self._result, methods=["GET"]),
                Route("/{endpoint:path}", self._submit, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        self.epoch += 1  # answers still in flight from the previous test are dropped
        self.behaviour = FalBehaviour()
        self.jobs: dict[str, FalJob] = {}
        self.submissions: list[FalJob] = []
        self.cancels: list[str] = []
        self.auth_seen: list[str | None] = []

    # --- protocol --------------------------------------------------------------------------

    async def _submit(self, request: Request) -> Response:
        if denied := self._deny(request):
            return denied
        if self.behaviour.submit_errors:
            return self.behaviour.submit_errors.pop(0).response()
        started = self.epoch
        await pause(self.behaviour.submit_delay)
        if started != self.epoch:  # the test that wanted this slow answer is over: record nothing
            return Response(status_code=503)
        endpoint = request.path_params["endpoint"]
        parts = endpoint.split("/")
        app = "/".join(parts[:3] if parts[0] in ("workflows", "comfy") else parts[:2])
        if len(parts) < 2:
            return JSONResponse({"detail": "Application not found"}, status_code=404)
        job = FalJob(str(uuid.uuid4()), app, endpoint, await request.json())
        self.jobs[job.request_id] = job
        self.submissions.append(job)
        urls = self._urls(request, job)
        return JSONResponse(
            {
                "status": "IN_QUEUE",
                "request_id": job.request_id,
                **urls,
                "logs": None,
                "metrics": {},
                "queue_position": self.behaviour.queue_positions[0] if self.behaviour.queue_positions else 0,
            },
            headers={"x-fal-request-id": job.request_id},
        )

    async def _status(self, request: Request) -> Response:
        job = self._job(request)
        if isinstance(job, Response):
            return job
        with_logs = request.query_params.get("logs", "0").lower() in ("1", "true")
        urls = self._urls(request, job)
        behaviour = self.behaviour
        queued, progressing = len(behaviour.queue_positions), len(behaviour.progress_logs)
        step = job.polls
        job.polls += 1
        if not job.completed and not job.cancelled and step < queued:
            return JSONResponse(
                {
                    "status": "IN_QUEUE",
                    "queue_position": behaviour.queue_positions[step],
                    "request_id": job.request_id,
                    **urls,
                }
            )
        logs = [_log(line) for line in behaviour.progress_logs[: max(step - queued + 1, 0)]]
        if not job.completed and not job.cancelled and step < queued + progressing:
            return JSONResponse(
                {
                    "status": "IN_PROGRESS",
                    "logs": logs if with_logs else None,
                    "request_id": job.request_id,
                    **urls,
                }
            )
        job.completed = True
        body: dict[str, Any] = {
            "status": "COMPLETED",
            "logs": logs if with_logs else None,
            "metrics": {"inference_time": 0.01},
            "request_id": job.request_id,
            **urls,
        }
        if job.cancelled:
            body.update(error="Request was cancelled", error_type="request_cancelled")
        elif behaviour.failure is not None:
            body.update(error=str(behaviour.failure[1]), error_type="internal_error")
        return JSONResponse(body)

    async def _result(self, request: Request) -> Response:
        job = self._job(request)
        if isinstance(job, Response):
            return job
        if not job.completed:
            return JSONResponse({"detail": "Request is still in progress"}, status_code=400)
        if job.cancelled:
            return JSONResponse({"detail": "Request was cancelled"}, status_code=400)
        if self.behaviour.failure is not None:
            status, detail = self.behaviour.failure
            return JSONResponse(
                {"detail": detail}, status_code=status, headers={"x-fal-request-id": job.request_id}
            )
        build = self.behaviour.output or default_output
        return JSONResponse(build(base_url(request), job), headers={"x-fal-request-id": job.request_id})

    async def _cancel(self, request: Request) -> Response:
        job = self._job(request)
        if isinstance(job, Response):
            return job
        self.cancels.append(job.request_id)
        if job.completed:
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        job.cancelled = True
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    async def _file(self, request: Request) -> Response:
        return Response(PNG, media_type="image/png")

    # --- helpers ---------------------------------------------------------------------------

    def _deny(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization")
        self.auth_seen.append(auth)
        if auth != f"Key {self.key}":
            return JSONResponse({"detail": "No user found for Key ID and Secret"}, status_code=401)
        return None

    def _job(self, request: Request) -> FalJob | Response:
        if denied := self._deny(request):
            return denied
        job = self.jobs.get(request.path_params["request_id"])
        if job is None or job.app != request.path_params["app"]:
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        return job

    def _urls(self, request: Request, job: FalJob) -> dict[str, str]:
        root = f"{base_url(request)}/{job.app}/requests/{job.request_id}"
        return {"response_url": root, "status_url": f"{root}/status", "cancel_url": f"{root}/cancel"}


def _log(message: str) -> dict[str, str]:
    return {
        "message": message,
        "level": "INFO",
        "source": "user",
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
    }
