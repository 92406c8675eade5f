"""Dependencies as Annotated aliases, so a handler's signature reads like a sentence.

Routes depend on the one service they call (`WorkflowsDep`, `ExecutionsDep` …), never on the whole
object graph: `create_app` puts the composition root's `Services` in `app.state.services`, and the
functions here hand each route its narrow slice. `ApiServices` names what the API layer may reach.
The accessors are `async def` although they only read an attribute: FastAPI runs a plain `def` dependency
on its thread pool, a hop per dependency per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant

from nodeloom.engine.registry import Registry
from nodeloom.errors import Forbidden, Unauthorized
from nodeloom.services.accounts import AccountService, Principal
from nodeloom.services.billing import BillingService
from nodeloom.services.comfyui.imports import ComfyImportService
from nodeloom.services.deliveries import DeliveryService
from nodeloom.services.executions import ExecutionService
from nodeloom.services.files import FileService
from nodeloom.services.health import Readiness
from nodeloom.services.idempotency import IdempotencyService
from nodeloom.services.limits import LimitsService
from nodeloom.services.metrics import Metrics
from nodeloom.services.provider_keys import ProviderKeyService
from nodeloom.services.triggers import TriggerService
from nodeloom.services.usage import UsageService
from nodeloom.services.users import UserService
from nodeloom.services.workflows import WorkflowService
from nodeloom.settings import Settings


class ApiServices(Protocol):
    """The services the HTTP layer uses (compose.Services provides them)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def accounts(self) -> AccountService: ...
    @property
    def users(self) -> UserService: ...
    @property
    def limiter(self) -> LimitsService: ...
    @property
    def idempotency(self) -> IdempotencyService: ...
    @property
    def workflows(self) -> WorkflowService: ...
    @property
    def executions(self) -> ExecutionService: ...
    @property
    def files(self) -> FileService: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def usage(self) -> UsageService: ...
    @property
    def billing(self) -> BillingService: ...
    @property
    def provider_keys(self) -> ProviderKeyService: ...
    @property
    def triggers(self) -> TriggerService: ...
    @property
    def deliveries(self) -> DeliveryService: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def readiness(self) -> Readiness: ...
    @property
    def comfy_imports(self) -> ComfyImportService: ...


def services_of(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


async def _settings(request: Request) -> Settings:
    return services_of(request).settings


async def _accounts(request: Request) -> AccountService:
    return services_of(request).accounts


async def _users(request: Request) -> UserService:
    return services_of(request).users


async def _workflows(request: Request) -> WorkflowService:
    return services_of(request).workflows


async def _executions(request: Request) -> ExecutionService:
    return services_of(request).executions


async def _files(request: Request) -> FileService:
    return services_of(request).files


async def _idempotency(request: Request) -> IdempotencyService:
    return services_of(request).idempotency


async def _catalogue(request: Request) -> Registry:
    return services_of(request).registry


async def _usage(request: Request) -> UsageService:
    return services_of(request).usage


async def _billing(request: Request) -> BillingService:
    return services_of(request).billing


async def _provider_keys(request: Request) -> ProviderKeyService:
    return services_of(request).provider_keys


async def _triggers(request: Request) -> TriggerService:
    return services_of(request).triggers


async def _deliveries(request: Request) -> DeliveryService:
    return services_of(request).deliveries


async def _metrics(request: Request) -> Metrics:
    return services_of(request).metrics


async def _readiness(request: Request) -> Readiness:
    return services_of(request).readiness


async def _comfy_imports(request: Request) -> ComfyImportService:
    return services_of(request).comfy_imports


SettingsDep = Annotated[Settings, Depends(_settings)]
AccountsDep = Annotated[AccountService, Depends(_accounts)]
UsersDep = Annotated[UserService, Depends(_users)]
WorkflowsDep = Annotated[WorkflowService, Depends(_workflows)]
ExecutionsDep = Annotated[ExecutionService, Depends(_executions)]
FilesDep = Annotated[FileService, Depends(_files)]
IdempotencyDep = Annotated[IdempotencyService, Depends(_idempotency)]
CatalogueDep = Annotated[Registry, Depends(_catalogue)]
UsageDep = Annotated[UsageService, Depends(_usage)]
BillingDep = Annotated[BillingService, Depends(_billing)]
ProviderKeysDep = Annotated[ProviderKeyService, Depends(_provider_keys)]
TriggersDep = Annotated[TriggerService, Depends(_triggers)]
DeliveriesDep = Annotated[DeliveryService, Depends(_deliveries)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
ReadinessDep = Annotated[Readiness, Depends(_readiness)]
ComfyImportsDep = Annotated[ComfyImportService, Depends(_comfy_imports)]


def authenticate(request: Request) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    session_auth = getattr(request.app.state, "session_auth", None)
    header = request.headers.get("authorization")
    if header is None and session_auth is not None:
        principal: Principal | None = session_auth(request)
        if principal is not None:
            request.state.principal = principal
            return principal
    if not header:
        raise Unauthorized("missing 'Authorization: Bearer sk-...' header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer sk-...'")
    principal = services_of(request).accounts.authenticate(token.strip())
    request.state.principal = principal
    return principal


#: each `require(scope)` check and its scope (api/openapi.py publishes it as the operation's security requirement)
SCOPE_CHECKS: dict[Callable[..., Any], str] = {}


def require(scope: str) -> Any:
    async def check(request: Request) -> Principal:
        # the rate-limit middleware identified the caller already (almost always): no trip to a thread for that;
        # otherwise the key or session is looked up off the event loop
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            principal = await run_in_threadpool(authenticate, request)
        if scope not in principal.scopes:
            raise Forbidden(f"this API key needs scope '{scope}'")
        return principal

    SCOPE_CHECKS[check] = scope
    return Depends(check)


def scope_of(dependant: Dependant) -> str | None:
    """The scope an operation needs: that of the `require(scope)` check among its dependencies, if any."""
    for sub in dependant.dependencies:
        scope = SCOPE_CHECKS.get(sub.call) if sub.call is not None else None
        if scope is None:
            scope = scope_of(sub)
        if scope is not None:
            return scope
    return None


ExecuteScope = Annotated[Principal, require("execute")]
ReadScope = Annotated[Principal, require("read")]
UsageScope = Annotated[Principal, require("usage")]
ManageScope = Annotated[Principal, require("manage")]


def base_url(request: Request) -> str:
    """The base of absolute links in answers (NODELOOM_PUBLIC_URL, else the address the request came to)."""
    public_url = services_of(request).settings.public_url
    if public_url:
        return public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


async def _base_url(request: Request) -> str:
    return base_url(request)


BaseUrl = Annotated[str, Depends(_base_url)]
