"""Hosted models as a service: which providers serve an account, in which order, under which deadline.

Hosted model nodes (`nodes/hosted.py`) reach vendors only through `ctx.service("providers")`, an
instance of `HostedModels`:

    call = await hosted.call(model, params, account_id=ctx.account_id, budget_s=840)
    result = await call.run(on_progress=..., on_submitted=remember, resume=recalled)
    call.used_own_key(result)       # the account's own vendor key served it: billed at byokCredits

- The operator configures vendors with environment variables, read once at start-up with every other
  setting by `Settings`: `NODELOOM_FAL_URL` + `FAL_KEY`, `NODELOOM_REPLICATE_URL` + `REPLICATE_API_TOKEN`,
  `NODELOOM_OPENAI_BASE_URL` + `OPENAI_API_KEY` (+ `NODELOOM_OPENAI_CHAT_MODEL` for a local server),
  `NODELOOM_GEMINI_URL` + `GEMINI_API_KEY`, and the route order `NODELOOM_PROVIDER_ORDER=fal,replicate`.
  `HostedModels(settings, keys=…)` keeps only the vendor part (`settings.provider_config()`, as
  `.config`): this service is handed to nodes, and must not carry the rest of the configuration.
- An account's own keys (`ProviderKeyService`) take precedence over the operator's for the same
  vendor, and vendors the account has a key for are tried first: the account asked to be billed there.
- The catalogue marks a hosted node unavailable when the operator configured none of its vendors
  (`unavailable_reason`, the registry's availability hook); executing checks the account too
  (`check_graph`), so an account with its own key can run what the operator has no key for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from nodeloom.engine.graph import Graph
from nodeloom.engine.node import Node
from nodeloom.errors import ValidationFailed
from nodeloom.providers import (
    PROVIDER_SETTINGS,
    HostedModel,
    Provider,
    ProviderResult,
    Route,
    Router,
    Submission,
    build_providers,
    routes,
)
from nodeloom.providers.base import Clock, OnProgress, Sleep
from nodeloom.providers.config import ProviderConfig
from nodeloom.providers.routing import OnRouteSubmitted
from nodeloom.settings import Settings

OWN_KEY_PATH = "PUT /api/v1/account/providers/{provider}"
CHAT_TASKS = ("chat", "prompt-expand", "caption")


class AccountKeys(Protocol):
    """An account's own vendor keys (`ProviderKeyService`; local runs, which have no account, pass none)."""

    def stored(self, account_id: str) -> frozenset[str]: ...

    def decrypted(self, account_id: str) -> dict[str, str]: ...


def node_providers(node_type: type[Node]) -> list[str]:
    """The vendors a node type can use, from its `provider` declaration ("fal,replicate")."""
    return [name for name in (node_type.provider or "").split(",") if name in PROVIDER_SETTINGS]


def own_key_runs(memory: Mapping[str, Any] | None) -> int:
    """How many runs of a node (1, or one per fan-out element) the account's own vendor key served.

    Billing reads it from the node's durable memory (`ExecutionNode.memory`), where a hosted node
    records `byok` (or `byok#<element>` per fan-out element) once the vendor answered: those runs
    cost `byok_credits`, the others the node's price.
    """
    return sum(1 for key, value in (memory or {}).items()
               if (key == "byok" or key.startswith("byok#")) and value is True)


def configure_hint(providers: Sequence[str]) -> str:
    """How to make a hosted node usable: "set FAL_KEY or REPLICATE_API_TOKEN, or store your own key with …"."""
    settings = []
    for name in providers:
        key = PROVIDER_SETTINGS[name][1]
        if name == "openai":
            key += f" (or {PROVIDER_SETTINGS[name][0]} pointing at a local OpenAI-compatible server)"
        settings.append(key)
    own = OWN_KEY_PATH.format(provider=providers[0]) if providers else OWN_KEY_PATH
    return f"set {' or '.join(settings)}, or store your own key with {own}"


@dataclass(frozen=True)
class HostedCall:
    """One hosted model call for one account: its routes (in the order to try) and the router."""

    routes: tuple[Route, ...]
    router: Router
    own_keys: frozenset[str]
    """Providers on these routes that use the account's own key."""
    deadline_s: float
    clock: Clock

    async def run(self, *, on_progress: OnProgress | None = None, on_submitted: OnRouteSubmitted | None = None,
                  resume: Submission | None = None) -> ProviderResult:
        return await self.router.run(self.routes, on_progress=on_progress, on_submitted=on_submitted,
                                     resume=resume, deadline=self.clock() + self.deadline_s)

    def used_own_key(self, result: ProviderResult) -> bool:
        return result.provider in self.own_keys


class HostedModels:
    """The `providers` service: operator providers built once; an account's own keys per call."""

    def __init__(self, settings: Settings, *, keys: AccountKeys, http: httpx.AsyncClient | None = None,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep):
        #: only the vendor part of the configuration: nodes reach this object (`ctx.service("providers")`)
        self.config: ProviderConfig = settings.provider_config()
        self.keys = keys
        # vendor APIs answer where they are asked; no redirect may carry a key elsewhere
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=False,
                                              trust_env=False)
        self._owns_http = http is None
        self._clock = clock
        self._sleep = sleep
        self._mapping = self.config.as_mapping()
        self.operator = self._providers({})

    def _providers(self, account_keys: Mapping[str, str]) -> dict[str, Provider]:
        return build_providers(self._mapping, http=self.http, account_keys=account_keys, clock=self._clock,
                               sleep=self._sleep, polling=self.config.polling)

    @property
    def operator_ready(self) -> frozenset[str]:
        return frozenset(name for name, p in self.operator.items() if p.unavailable_reason is None)

    # --- availability --------------------------------------------------------------------------
    def unavailable_reason(self, node_type: type[Node]) -> str | None:
        """The registry's availability hook: unavailable when the operator configured none of its vendors."""
        providers = node_providers(node_type)
        if not providers or self.operator_ready.intersection(providers):
            return None
        return configure_hint(providers)

    def check_graph(self, account_id: str, graph: Graph) -> None:
        """At execute: refuse (422) hosted nodes that neither the operator's nor the account's keys can serve."""
        hosted = {nid: node_providers(node.type) for nid, node in graph.nodes.items()}
        hosted = {nid: providers for nid, providers in hosted.items() if providers}
        if not hosted:
            return
        ready = self.operator_ready
        if all(ready.intersection(providers) for providers in hosted.values()):
            return
        ready = ready | self.keys.stored(account_id)
        errors = [
            {"path": f"nodes[{graph.nodes[nid].index}].type",
             "message": f"node type '{graph.nodes[nid].type.type}' has no configured provider: "
                        f"{configure_hint(providers)}"}
            for nid, providers in hosted.items() if not ready.intersection(providers)
        ]
        if errors:
            raise ValidationFailed("the graph uses hosted models that no provider is configured for", errors,
                                   code="invalid_graph")

    # --- calls ---------------------------------------------------------------------------------
    async def call(self, model: HostedModel, params: Mapping[str, Any], *, account_id: str,
                   extra_args: Mapping[str, Mapping[str, str]] | None = None,
                   budget_s: float | None = None) -> HostedCall:
        """Routes for `model` with these node params, for this account.

        `extra_args` maps a node param to the vendor argument it becomes, per provider, for params the
        model table does not map; `budget_s` is the node's own time limit (the call gets the smaller).
        """
        own = await asyncio.to_thread(self.keys.decrypted, account_id) if account_id else {}
        providers = self._providers(own)
        planned = routes(model, providers, params)
        if extra_args:
            planned = [_with_extra(route, params, extra_args) for route in planned]
        chat_model = self.config.chat_model
        if chat_model and model.task in CHAT_TASKS:
            planned = [Route(r.provider, chat_model, r.arguments) if r.provider.name == "openai" else r
                       for r in planned]
        rank = {name: i for i, name in enumerate(self.config.order)}
        planned.sort(key=lambda r: (r.provider.name not in own, rank.get(r.provider.name, len(rank))))
        deadline_s = self.config.deadline_s
        if budget_s is not None:
            deadline_s = min(deadline_s, budget_s)
        router = Router(retry=self.config.retry, attempt_timeout=self.config.attempt_timeout_s,
                        clock=self._clock, sleep=self._sleep)
        return HostedCall(routes=tuple(planned), router=router,
                          own_keys=frozenset(own).intersection(r.provider.name for r in planned),
                          deadline_s=deadline_s, clock=self._clock)

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()


def _with_extra(route: Route, params: Mapping[str, Any], extra: Mapping[str, Mapping[str, str]]) -> Route:
    added = {arg: params[param] for param, by_provider in extra.items()
             if params.get(param) is not None and (arg := by_provider.get(route.provider.name))}
    return Route(route.provider, route.model, {**route.arguments, **added}) if added else route
