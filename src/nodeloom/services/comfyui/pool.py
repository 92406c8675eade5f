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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from nodeloom.clock import Clock, iso
from nodeloom.errors import ApiError
from nodeloom.providers.comfyui import ComfyClient, ComfyError
from nodeloom.storage.db import Database
from nodeloom.storage.models_comfyui import ComfyServer

log = logging.getLogger("nodeloom.comfyui")

#: `/object_info` is large (a few MB) and changes only when a server's nodes or models change
OBJECT_INFO_EVERY = 10


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


class ComfyPool:
    def __init__(self, db: Database, *, urls: Sequence[str], clock: Clock,
                 client: Callable[[str], ComfyClient] = ComfyClient):
        self.db = db
        self.urls = tuple(urls)
        self.clock = clock
        self._client = client
        self._checks = 0

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
        async with self._client(url) as client:
            try:
                await client.system_stats()
                queue = await client.queue()
                seen.update(healthy=True, error=None, queue_running=len(queue.running),
                            queue_pending=len(queue.pending))
                if with_object_info or not await asyncio.to_thread(self._has_object_info, url):
                    info = await client.object_info()
                    seen.update(object_info=info, object_info_at=self.clock.now(), node_types=len(info))
            except ComfyError as exc:
                log.warning("ComfyUI server %s is not healthy: %s", url, exc)
                seen.update(healthy=False, error=f"{type(exc).__name__}: {exc}"[:500])
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
        return len(rows), max((f"{at.isoformat()} {url}" for url, at in rows if at is not None), default=None)

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


def merge_object_info(infos: dict[str, dict[str, Any]], *, healthy: set[str]) -> dict[str, Any]:
    """One `/object_info` from several servers' (a healthy server's entry wins); PoolUnavailable when empty."""
    merged: dict[str, Any] = {}
    for url in sorted(infos, key=lambda u: u not in healthy):
        for name, entry in infos[url].items():
            merged.setdefault(name, entry)
    if not merged:
        raise PoolUnavailable("no ComfyUI server of the pool has answered yet; try again shortly")
    return merged
