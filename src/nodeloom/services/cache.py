"""The node-output cache: per account, bounded (LRU), live values kept by reference."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from nodeloom.media.values import MediaFile


class MemoryCache:
    def __init__(self, max_entries_per_account: int):
        self.max_entries = max_entries_per_account
        self._lock = threading.Lock()
        self._accounts: dict[str, OrderedDict[str, dict[str, Any]]] = {}

    def for_account(self, account_id: str) -> AccountCache:
        return AccountCache(self, account_id)

    def get(self, account_id: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            entries = self._accounts.get(account_id)
            if entries is None or key not in entries:
                return None
            entries.move_to_end(key)
            return entries[key]

    def put(self, account_id: str, key: str, outputs: dict[str, Any]) -> None:
        if self.max_entries <= 0 or _holds_scratch_files(outputs):
            return
        with self._lock:
            entries = self._accounts.setdefault(account_id, OrderedDict())
            entries[key] = outputs
            entries.move_to_end(key)
            while len(entries) > self.max_entries:
                entries.popitem(last=False)


class AccountCache:
    def __init__(self, cache: MemoryCache, account_id: str):
        self._cache = cache
        self._account = account_id

    async def get(self, key: str) -> dict[str, Any] | None:
        return self._cache.get(self._account, key)

    async def put(self, key: str, outputs: dict[str, Any]) -> None:
        self._cache.put(self._account, key, outputs)


def _holds_scratch_files(value: Any) -> bool:
    """Files in an execution's work dir vanish when it ends, so outputs that hold them are not cached."""
    if isinstance(value, MediaFile):
        return value.file_id is None
    if isinstance(value, dict):
        return any(_holds_scratch_files(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_scratch_files(v) for v in value)
    return False
