"""The ComfyUI pool: the servers an operator configures (`NODELOOM_COMFYUI_URLS`), their health and what they run.

Every worker checks the servers periodically (`check`, one of its duties) and writes what it saw to the
`comfyui_servers` table, so every API process and worker reads the same state: healthy (it answered
`/system_stats`), its queue, and the last `/object_info` it served. The node types the pool offers are the
union of every server's last `/object_info` — kept when a server goes down, so import and validation go on
working; with none ever read, `object_info` answers 503 `comfyui_unavailable` (PoolUnavailable).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from nodeloom.clock import Clock, iso
from nodeloom.errors import ApiError
from nodeloom.providers.comfyui import ComfyClient, ComfyError, SharedEvents
from nodeloom.storage.db import Database
from nodeloom.storage.models_comfyui import ComfyLease, ComfyServer

log = logging.getLogger("nodeloom.comfyui")

#: `/object_info` is large (a few MB) and changes only when a server's nodes or models change
OBJECT_INFO_EVERY = 10
#: segments of ours a server holds at once: one running and one queued behind it
SLOTS = 2
#: checks in a row a server must fail by timing out (not by refusing the connection) before it is unhealthy
MISSES_BEFORE_UNHEALTHY = 2


class PoolUnavailable(ApiError):
    status = 503
    code = "comfyui_unavailable"


@dataclass(frozen=True, slots=True)
class ServerState:
    url: str
    healthy: bool
    checked_at: datetime | None
    error: str | None
    queue_running: int
    queue_pending: int
    node_types: int

    def public(self) -> dict[str, Any]:
        return {"url": self.url, "healthy": self.healthy, "checkedAt": iso(self.checked_at), "error": self.error,
                "queue": {"running": self.queue_running, "pending": self.queue_pending},
                "nodeTypes": self.node_types}


@dataclass(frozen=True, slots=True)
class Need:
    """What a segment needs of a server: its node classes, and the files its loaders name ((class, input, file))."""

    classes: frozenset[str]
    files: tuple[tuple[str, str, str], ...] = ()

    def met_by(self, info: Mapping[str, Any]) -> bool:
        for class_type in self.classes:
            if class_type not in info:
                return False
        for class_type, name, value in self.files:
            choices = _choices(info.get(class_type), name)
            if choices is not None and value not in choices:
                return False
        return True

    def missing(self, info: Mapping[str, Any]) -> list[str]:
        """What a server lacks, in words (for an error that says why no server can run the segment)."""
        out = [f"node type {c}" for c in sorted(self.classes) if c not in info]
        for class_type, name, value in self.files:
            choices = _choices(info.get(class_type), name)
            if class_type in info and choices is not None and value not in choices:
                out.append(f"{class_type}.{name} file {value!r}")
        return out


def _choices(entry: Any, name: str) -> list[Any] | None:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("input"), Mapping):
        return None
    for section in ("required", "optional"):
        declared = entry["input"].get(section)
        spec = declared.get(name) if isinstance(declared, Mapping) else None
        if isinstance(spec, (list, tuple)) and spec:
            if isinstance(spec[0], (list, tuple)):
                return list(spec[0])
            if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping) \
                    and isinstance(spec[1].get("options"), list):
                return list(spec[1]["options"])
    return None


class NoServer(Exception):
    """No server of the pool, healthy or not, has what a segment needs."""


class ComfyPool:
    def __init__(self, db: Database, *, urls: Sequence[str], clock: Clock,
                 client: Callable[[str], ComfyClient] = ComfyClient, local_url: str | None = None):
        self.db = db
        #: a ComfyUI this process started (`--comfyui`) is a server of its pool only: other processes cannot reach it
        self.urls = tuple(urls) + ((local_url,) if local_url and local_url not in urls else ())
        self.clock = clock
        self._client = client
        self._checks = 0
        self._misses: dict[str, int] = {}
        #: one HTTP client for every call to the pool from this process (making one costs tens of ms: its TLS
        #: context), bound to the event loop that first used it
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        #: one socket per server for every prompt this process follows there, per event loop (a socket is bound to
        #: the loop that opened it)
        self._events: dict[asyncio.AbstractEventLoop, dict[str, SharedEvents]] = {}
        self._infos: tuple[tuple[int, str | None], dict[str, dict[str, Any]]] | None = None

    def client(self, url: str) -> ComfyClient:
        """A client for `url` over this process's shared connection pool (closing it leaves the pool open)."""
        if self._client is not ComfyClient:
            return self._client(url)
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            self._http = httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                           limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
            self._http_loop = loop
        return ComfyClient(url, http=self._http)

    def events(self, url: str) -> SharedEvents:
        """This process's socket to `url` (opened by its first `watch`): every prompt we post there is submitted with
        its client id, so that no prompt pays for a connection of its own."""
        loop = asyncio.get_running_loop()
        if loop not in self._events:
            for closed in [other for other in self._events if other.is_closed()]:
                del self._events[closed]
            self._events[loop] = {}
        sockets = self._events[loop]
        found = sockets.get(url)
        if found is None:
            found = sockets[url] = self.client(url).shared_events()
        return found

    async def aclose(self) -> None:
        # (another loop's sockets can be neither used nor closed from this one: they end with their loop)
        for events in self._events.pop(asyncio.get_running_loop(), {}).values():
            await events.aclose()
            await events.client.aclose()
        if self._http is not None and self._http_loop is asyncio.get_running_loop():
            await self._http.aclose()
        self._http = None

    @property
    def configured(self) -> bool:
        return bool(self.urls)

    # checking ---------------------------------------------------------------------------------------------
    async def check(self) -> None:
        """Check every server once (a worker duty); `/object_info` on the first check and every tenth after."""
        with_object_info = self._checks % OBJECT_INFO_EVERY == 0
        self._checks += 1
        await asyncio.gather(*(self._check_one(url, with_object_info) for url in self.urls))

    async def _check_one(self, url: str, with_object_info: bool) -> None:
        seen: dict[str, Any] = {}
        async with self.client(url) as client:
            try:
                await client.system_stats()
                queue = await client.queue()
                seen.update(healthy=True, error=None, queue_running=len(queue.running),
                            queue_pending=len(queue.pending))
                if with_object_info or not await asyncio.to_thread(self._has_object_info, url):
                    info = await client.object_info()
                    seen.update(object_info=info, object_info_at=self.clock.now(), node_types=len(info))
            except ComfyError as exc:
                refused = isinstance(exc.__cause__, httpx.ConnectError)
                self._misses[url] = self._misses.get(url, 0) + 1
                # a refused connection is a server gone; a slow answer (a busy CPU server) counts only when repeated
                if not refused and self._misses[url] < MISSES_BEFORE_UNHEALTHY:
                    log.info("ComfyUI server %s missed a check (%s); unhealthy if it misses the next", url, exc)
                    return
                log.warning("ComfyUI server %s is not healthy: %s", url, exc)
                seen.update(healthy=False, error=f"{type(exc).__name__}: {exc}"[:500])
            else:
                self._misses[url] = 0
        await asyncio.to_thread(self._record, url, seen)

    def _has_object_info(self, url: str) -> bool:
        with self.db.read() as s:
            return s.scalar(select(ComfyServer.object_info_at).where(ComfyServer.url == url)) is not None

    def _record(self, url: str, seen: dict[str, Any]) -> None:
        with self.db.write() as s:
            row = s.get(ComfyServer, url)
            if row is None:
                row = ComfyServer(url=url, healthy=False, queue_running=0, queue_pending=0, node_types=0)
                s.add(row)
            row.checked_at = self.clock.now()
            for key, value in seen.items():
                setattr(row, key, value)

    # reading ----------------------------------------------------------------------------------------------
    def servers(self) -> list[ServerState]:
        """Every configured server as last checked (never checked: unhealthy, no time)."""
        with self.db.read() as s:
            rows = {r.url: r for r in s.scalars(select(ComfyServer).where(ComfyServer.url.in_(self.urls)))}
            return [ServerState(url=url, healthy=bool(r and r.healthy), checked_at=r.checked_at if r else None,
                                error=r.error if r else "not checked yet",
                                queue_running=r.queue_running if r else 0, queue_pending=r.queue_pending if r else 0,
                                node_types=r.node_types if r else 0)
                    for url in self.urls for r in [rows.get(url)]]

    def object_info_stamp(self) -> tuple[int, str | None]:
        """Changes whenever some server's stored `/object_info` does (cheap: no JSON is read)."""
        with self.db.read() as s:
            rows = s.execute(select(ComfyServer.url, ComfyServer.object_info_at)
                             .where(ComfyServer.url.in_(self.urls), ComfyServer.object_info_at.is_not(None))).all()
        return _stamp(rows)

    def healthy_urls(self) -> set[str]:
        """The servers that answered their last check (cheap: no JSON is read)."""
        with self.db.read() as s:
            return set(s.scalars(select(ComfyServer.url).where(ComfyServer.url.in_(self.urls),
                                                             ComfyServer.healthy.is_(True))))

    def object_infos(self) -> dict[str, dict[str, Any]]:
        """Each server's last `/object_info` (servers that never served one are absent)."""
        if not self.configured:
            raise PoolUnavailable("no ComfyUI servers are configured on this server (NODELOOM_COMFYUI_URLS)")
        with self.db.read() as s:
            rows = s.execute(select(ComfyServer.url, ComfyServer.object_info)
                             .where(ComfyServer.url.in_(self.urls), ComfyServer.object_info.is_not(None))).all()
        return {url: info for url, info in rows if info}

    def object_info(self) -> dict[str, Any]:
        """The node types the pool offers: every server's last `/object_info`, healthy servers' entries first."""
        return merge_object_info(self.object_infos(), healthy=self.healthy_urls())


    # routing: leases ------------------------------------------------------------------------------------------
    def _cached_infos(self, s: Session | None = None) -> dict[str, dict[str, Any]]:
        if s is None:
            with self.db.read() as s:
                return self._cached_infos(s)
        rows = s.connection().execute(_STAMP, {"urls": self.urls}).all()
        stamp = _stamp(rows)
        if self._infos is None or self._infos[0] != stamp:
            found = s.execute(select(ComfyServer.url, ComfyServer.object_info)
                              .where(ComfyServer.url.in_(self.urls), ComfyServer.object_info.is_not(None))).all()
            self._infos = (stamp, {u: info for u, info in found if info})
        return self._infos[1]

    def acquire(self, holder: str, need: Need, *, ttl_s: float, exclude: Collection[str] = (),
                url: str | None = None) -> str | None:
        """A lease on a healthy server that has what `need` names, the least loaded first (its queue at the last check
        plus the segments we placed since), holding fewer than SLOTS of ours; None while none is free. `url`: that server only
        (re-attaching to a prompt it runs), whatever its load. Raises NoServer when no server at all could run it.

        One read (is there room anywhere?), then, only when there may be, one write transaction that takes the lease:
        a waiting segment polls with reads only."""
        with self.db.read() as s:
            infos = self._cached_infos(s)
            fitting = {u for u, info in infos.items() if u not in exclude and need.met_by(info)}
            if url is None and not fitting:
                lacks = "; ".join(f"{u}: {', '.join(need.missing(info)) or 'excluded'}" for u, info in infos.items())
                raise NoServer("no ComfyUI server of the pool can run this segment" + (f" ({lacks})" if lacks else ""))
            if url is None and not self._may_have_room(s, holder, fitting):
                return None
        with self.db.write() as s:
            now = self.clock.now()
            c = s.connection()
            c.execute(_EXPIRED, {"now": now})
            expires = now + timedelta(seconds=ttl_s)
            leases = c.execute(_LEASES).all()
            held = next((u for h, u in leases if h == holder), None)
            if held is not None and (url is None or held == url):
                c.execute(_RENEW, {"held_by": holder, "expires": expires})
                return held
            if held is not None:
                c.execute(_DROP, {"holder": holder})
            counts = Counter(u for h, u in leases if h != holder)
            if url is not None:
                choice = url
            else:
                servers = c.execute(_HEALTHY_LOAD, {"urls": sorted(fitting)}).all()
                # load: what the server's queue held at its last check and what we placed there since
                free = [(running + pending + counts[u], counts[u], u) for u, running, pending in servers
                        if counts[u] < SLOTS]
                if not free:
                    return None
                choice = min(free)[2]
                if not self.db.is_sqlite:
                    # serialize acquirers of one server (SQLite's write transaction already is one) and count again
                    s.execute(select(ComfyServer.url).where(ComfyServer.url == choice).with_for_update())
                    taken = s.scalar(select(func.count()).select_from(ComfyLease).where(ComfyLease.url == choice))
                    if (taken or 0) >= SLOTS:
                        return None
            c.execute(_INSERT, {"holder": holder, "url": choice, "expires_at": expires})
            return choice

    def any_healthy_fits(self, need: Need, *, exclude: Collection[str] = ()) -> bool:
        """Whether some healthy server (busy or not) has what `need` names."""
        with self.db.read() as s:
            infos = self._cached_infos(s)
            healthy = set(s.scalars(select(ComfyServer.url).where(ComfyServer.url.in_(self.urls),
                                                                 ComfyServer.healthy.is_(True))))
        return any(u in healthy and u not in exclude and need.met_by(info) for u, info in infos.items())

    def _may_have_room(self, s: Session, holder: str, fitting: set[str]) -> bool:
        c = s.connection()
        leases = c.execute(_LIVE_LEASES, {"now": self.clock.now()}).all()
        if any(h == holder for h, _u, _live in leases):
            return True
        counts = Counter(u for _h, u, live in leases if live)
        healthy = c.execute(_HEALTHY_LOAD, {"urls": sorted(fitting)}).all()
        return any(counts[u] < SLOTS for u, _running, _pending in healthy)

    def renew(self, holder: str, *, ttl_s: float) -> None:
        with self.db.write() as s:
            held = s.get(ComfyLease, holder)
            if held is not None:
                held.expires_at = self.clock.now() + timedelta(seconds=ttl_s)

    def release(self, holder: str) -> None:
        with self.db.write() as s:
            s.connection().execute(_DROP, {"holder": holder})

    def leases(self) -> dict[str, int]:
        """How many segments of ours each server holds now."""
        with self.db.read() as s:
            rows = s.execute(select(ComfyLease.url, func.count()).where(ComfyLease.expires_at >= self.clock.now())
                             .group_by(ComfyLease.url)).all()
        return {u: int(n) for u, n in rows}

    def mark_unhealthy(self, url: str, error: str) -> None:
        """A server that failed a segment's call: unhealthy until its next check finds it answering."""
        self._record(url, {"healthy": False, "error": error[:500]})


# the statements of the routing hot path, built once
_STAMP = select(ComfyServer.url, ComfyServer.object_info_at).where(
    ComfyServer.url.in_(bindparam("urls", expanding=True)), ComfyServer.object_info_at.is_not(None))
_HEALTHY_LOAD = select(ComfyServer.url, ComfyServer.queue_running, ComfyServer.queue_pending).where(
    ComfyServer.url.in_(bindparam("urls", expanding=True)), ComfyServer.healthy.is_(True))
_LEASES = select(ComfyLease.holder, ComfyLease.url)
_LIVE_LEASES = select(ComfyLease.holder, ComfyLease.url, (ComfyLease.expires_at >= bindparam("now")).label("live"))
_EXPIRED = delete(ComfyLease).where(ComfyLease.expires_at < bindparam("now"))
_RENEW = update(ComfyLease).where(ComfyLease.holder == bindparam("held_by")).values(expires_at=bindparam("expires"))
_DROP = delete(ComfyLease).where(ComfyLease.holder == bindparam("holder"))
_INSERT = insert(ComfyLease)


def _stamp(rows: Sequence[Any]) -> tuple[int, str | None]:
    """`object_info_stamp` of rows (url, object_info_at)."""
    return len(rows), max((f"{at.isoformat()} {url}" for url, at in rows if at is not None), default=None)


def merge_object_info(infos: dict[str, dict[str, Any]], *, healthy: set[str]) -> dict[str, Any]:
    """One `/object_info` from several servers' (a healthy server's entry wins); PoolUnavailable when empty."""
    merged: dict[str, Any] = {}
    for url in sorted(infos, key=lambda u: u not in healthy):
        for name, entry in infos[url].items():
            merged.setdefault(name, entry)
    if not merged:
        raise PoolUnavailable("no ComfyUI server of the pool has answered yet; try again shortly")
    return merged
