"""`create_app(settings)`: the API's composition root. No engine, settings or app exists at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response

from nodeloom.api import errors, openapi
from nodeloom.api.idempotency import IdempotencyMiddleware
from nodeloom.api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from nodeloom.api.ratelimit import RateLimitMiddleware
from nodeloom.api.routes import auth, executions, files, keys, nodes, providers, usage, webhooks, workflows
from nodeloom.compose import Services, build
from nodeloom.services.hub import LocalBusHub
from nodeloom.settings import Settings

log = logging.getLogger("nodeloom.api")

API_DESCRIPTION = (
    "Node-based AI workflows as a REST API. Authenticate with `Authorization: Bearer sk-…`; each operation names "
    "the scope it needs. Every 4xx/5xx answer is `{\"error\": {\"code\", \"message\", \"details\"?, …}}` "
    "(`ErrorEnvelope`); every answer carries `X-Request-Id` and `X-RateLimit-Limit/Remaining/Reset`, and a 429 "
    "`Retry-After`. The guide is docs/api.md in the repository.")


def find_web_dist(configured: Path | None) -> Path:
    """The built dashboard: NODELOOM_WEB_DIST, else web/dist beside the source tree (editable installs),
    else web/dist under the working directory (an installed package, as in the Docker image)."""
    if configured is not None:
        return configured
    beside_source = Path(__file__).resolve().parents[3] / "web" / "dist"
    return beside_source if beside_source.is_dir() else Path.cwd() / "web" / "dist"


def create_app(settings: Settings | None = None, *, services: Services | None = None,
               run_workers: bool | None = None) -> FastAPI:
    """The API over `services` (built from `settings` by the composition root when not given). With the
    embedded default, the app's lifespan also runs the worker loop and its periodic duties."""
    settings = settings or (services.settings if services else Settings())
    svc = services or build(settings)
    workers_enabled = svc.embedded_workers if run_workers is None else run_workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        if isinstance(svc.hub, LocalBusHub):
            svc.hub.listen()  # changes recorded by worker processes wake this process's waiters
        task = asyncio.create_task(svc.worker().run(stop)) if workers_enabled else None
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await svc.aclose()

    app = FastAPI(title="nodeloom", version="0.1.0", lifespan=lifespan,
                  description=API_DESCRIPTION)
    app.state.services = svc
    errors.install(app)
    openapi.install(app)  # /openapi.json: typed answers, our error envelope, the bearer scheme and scopes
    for router in (executions.router, workflows.router, files.router, keys.router, nodes.router, webhooks.router):
        app.include_router(router)
    app.include_router(usage.router)
    app.include_router(providers.router)
    auth.install(app)  # /api/v1/auth/* and the session_auth hook (dashboard sessions)
    _mount_dashboard(app, find_web_dist(settings.web_dist))
    # outermost first: request id → CORS → rate limit (+ headers, 500s) → body limit → idempotency → routes
    app.add_middleware(IdempotencyMiddleware, service=svc.idempotency)
    app.add_middleware(BodyLimitMiddleware, max_body=settings.max_body_bytes, max_upload=settings.max_upload_bytes)
    app.add_middleware(RateLimitMiddleware, limiter=svc.limiter, accounts=svc.accounts,
                       anonymous_per_minute=settings.anonymous_requests_per_minute, trigger_owner=svc.triggers.owner)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=True,
                           allow_methods=["*"], allow_headers=["*"],
                           expose_headers=["X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                                           "X-RateLimit-Reset", "Retry-After", "Idempotent-Replayed"])
    app.add_middleware(RequestIdMiddleware)
    return app


def _mount_dashboard(app: FastAPI, web_dist: Path) -> None:
    """Serve the built dashboard (web/dist) at `/`; unknown non-API GETs fall back to index.html
    (client-side routes). API paths keep their 404/405 answers."""

    def serve(path: str) -> Response | None:
        if path.startswith("api/") or path in ("openapi.json", "docs", "redoc"):
            return None
        if not web_dist.is_dir():
            if path == "":
                return JSONResponse({"name": "nodeloom", "api": "/api/v1", "docs": "/docs",
                                     "dashboard": "not built (run `make web`)"})
            return None
        candidate = (web_dist / path).resolve()
        if path and candidate.is_file() and web_dist.resolve() in candidate.parents:
            return FileResponse(candidate)
        return FileResponse(web_dist / "index.html")

    app.state.spa_fallback = serve
