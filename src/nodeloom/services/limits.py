"""Plans, rate limits, daily quotas and concurrency caps (API.md "Rate limits, quotas, plans").

- Request and execution rates use the `limits` library's moving window: in process memory on the
  embedded default, on Redis when `NODELOOM_REDIS_URL` is set, so every API process shares one budget.
  The windows follow real time; their length is configuration (`rate_limit_window_seconds`).
- The daily quota is a counter row incremented, conditionally, in the transaction that creates the
  execution, so concurrent submissions cannot overshoot it. Days are UTC days of the injected clock.
- Concurrency caps are applied where work is claimed (`claim_room` is the SQL queue's
  `cap_filter`): a capped account's executions wait in the queue while others pass them.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from nodeloom.clock import Clock
from nodeloom.errors import ApiError, NotFound, ValidationFailed
from nodeloom.queue.sql import live_claims
from nodeloom.services.lifecycle import ExecutionListener
from nodeloom.services.submission import Submission
from nodeloom.services.usage import day_of, ensure_day
from nodeloom.settings import PlanLimits, Settings
from nodeloom.storage.db import Database
from nodeloom.storage.models import Account
from nodeloom.storage.models_platform import UsageDay

if TYPE_CHECKING:
    from nodeloom.services.accounts import Principal

#: per-account overrides an operator may set (`nodeloom accounts set-limits`), stored in `accounts.limits`
OVERRIDABLE = ("requests_per_minute", "executions_per_day", "executions_per_minute", "concurrency")
#: PostgreSQL advisory lock that serialises claims while caps are counted (SQLite claims are serial anyway)
CLAIM_LOCK = 0x6E6C_6361_7073



class SweptMemoryStorage(MemoryStorage):
    """`limits`' in-memory storage with one sweeper thread per storage. The library's own (5.8) starts a new 10 ms
    `threading.Timer` whenever the previous one has fired — in practice a thread start (≈2 ms) on most hits, on the
    event loop. Expired entries are only memory: reads check expiry themselves, so sweeping once a second is enough."""

    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        super().__init__(uri, wrap_exceptions, **options)
        self._sweeper: threading.Thread | None = None

    def _MemoryStorage__schedule_expiry(self) -> None:  # the library's private hook, name-mangled
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=_sweep, args=(weakref.ref(self),), name="limits-sweeper",
                                             daemon=True)
            self._sweeper.start()


def _sweep(ref: weakref.ReferenceType[SweptMemoryStorage]) -> None:
    """Sweep while the storage lives (a weak reference: a dropped storage ends its thread)."""
    while True:
        time.sleep(SweptMemoryStorage.SWEEP_SECONDS)
        storage = ref()
        if storage is None:
            return
        storage._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        del storage

#: today's execution counter +1 (built once: every submit runs it), with or without the plan's daily quota
_COUNT_EXECUTION = (update(UsageDay).where(UsageDay.account_id == bindparam("b_account"),
                                           UsageDay.day == bindparam("b_day"))
                    .values(executions=UsageDay.executions + 1))
_COUNT_EXECUTION_WITHIN = _COUNT_EXECUTION.where(UsageDay.executions < bindparam("b_quota"))


class RateLimited(ApiError):
    """429 with `retryAfter` in the body and a `Retry-After` header."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code, retryAfter=retry_after)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


@dataclass(frozen=True)
class Budget:
    """One moving window after a hit (or a peek): what the X-RateLimit-* headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset: float  # unix seconds at which the oldest request in the window leaves it

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset - now))

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-ratelimit-limit", str(self.limit).encode()),
                (b"x-ratelimit-remaining", str(max(0, self.remaining)).encode()),
                (b"x-ratelimit-reset", str(math.ceil(self.reset)).encode())]


class LimitsService(ExecutionListener):
    """Plans and rates; as an execution listener, the execution rate (admit) and the daily quota (queued)."""

    def __init__(self, db: Database, *, settings: Settings, clock: Clock):
        self.db = db
        self.settings = settings
        self.clock = clock
        self._days_day: str | None = None
        self._days_seen: set[str] = set()
        self.enforce = settings.rate_limits_enabled
        self.window_seconds = settings.rate_limit_window_seconds
        self.shared = bool(settings.redis_url)
        storage: Any = (storage_from_string(settings.redis_url, key_prefix=settings.rate_limit_namespace)
                        if settings.redis_url else SweptMemoryStorage())
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self._items: dict[int, RateLimitItem] = {}
        self._plans: dict[str, tuple[float, str, PlanLimits]] = {}
        self._lock = threading.Lock()

    # plans -------------------------------------------------------------------------------------------
    def plan_for(self, account_id: str, *, session: Session | None = None) -> tuple[str, PlanLimits]:
        """The account's plan name and its effective limits (plan defaults + per-account overrides)."""
        now = self.clock.time()
        cached = self._plans.get(account_id)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        if session is not None:
            row = session.execute(select(Account.plan, Account.limits).where(Account.id == account_id)).first()
        else:
            with self.db.read() as s:
                row = s.execute(select(Account.plan, Account.limits).where(Account.id == account_id)).first()
        name, overrides = (row[0], row[1] or {}) if row is not None else ("free", {})
        base = self.settings.plans.get(name) or self.settings.plans["free"]
        fields = {k: v for k, v in (overrides or {}).items() if k in OVERRIDABLE}
        limits = base.model_copy(update=fields) if fields else base
        with self._lock:
            self._plans[account_id] = (now + self.settings.plan_cache_seconds, name, limits)
        return name, limits

    def invalidate(self, account_id: str) -> None:
        with self._lock:
            self._plans.pop(account_id, None)

    def set_plan(self, account_id: str, plan: str) -> dict[str, Any]:
        if plan not in self.settings.plans:
            raise ValidationFailed(f"unknown plan '{plan}'",
                                   [{"path": "plan", "message": f"one of {sorted(self.settings.plans)}"}])
        with self.db.write() as s:
            account = s.get(Account, account_id)
            if account is None:
                raise NotFound("account not found")
            account.plan = plan
        self.invalidate(account_id)
        return self.describe(account_id)

    def set_limits(self, account_id: str, *, clear: bool = False, **overrides: int | None) -> dict[str, Any]:
        """Override plan limits for one account. A value of None leaves a field as it is; a negative
        `executions_per_day` means unlimited; `clear` drops every override first."""
        unknown = set(overrides) - set(OVERRIDABLE)
        if unknown:
            raise ValidationFailed("unknown limits", [{"path": k, "message": "not a limit"} for k in sorted(unknown)])
        with self.db.write() as s:
            account = s.get(Account, account_id)
            if account is None:
                raise NotFound("account not found")
            current = {} if clear else dict(account.limits or {})
            for k, v in overrides.items():
                if v is None:
                    continue
                current[k] = None if (k == "executions_per_day" and v < 0) else v
            PlanLimits(**{**self.settings.plans["free"].model_dump(), **current})  # refuses nonsense values
            account.limits = current
        self.invalidate(account_id)
        return self.describe(account_id)

    def describe(self, account_id: str) -> dict[str, Any]:
        name, limits = self.plan_for(account_id)
        return {"accountId": account_id, "plan": name, **limits.model_dump()}

    # request rate ------------------------------------------------------------------------------------
    def _item(self, amount: int) -> RateLimitItem:
        item = self._items.get(amount)
        if item is None:
            item = self._items[amount] = RateLimitItemPerSecond(amount, self.window_seconds)
        return item

    def hit(self, key: str, limit: int) -> Budget:
        """Count one request against `key`'s moving window (refused requests are not counted)."""
        item = self._item(limit)
        allowed = self.limiter.hit(item, key)
        reset, remaining = self.limiter.get_window_stats(item, key)
        return Budget(allowed=allowed, limit=limit, remaining=remaining, reset=reset)

    def peek(self, key: str, limit: int) -> Budget:
        item = self._item(limit)
        reset, remaining = self.limiter.get_window_stats(item, key)
        return Budget(allowed=remaining > 0, limit=limit, remaining=remaining, reset=reset)

    def request_budget(self, principal: Principal | None, *, client: str,
                       session_id: str | None = None) -> tuple[str, int]:
        """Whose budget a request spends: a dashboard session's, an API account's, or a client address's."""
        if principal is None:
            return f"addr:{client}", self.settings.anonymous_requests_per_minute
        if principal.user_id is not None:
            return f"session:{session_id or principal.user_id}", self.settings.session_requests_per_minute
        return f"acct:{principal.account_id}", self.plan_for(principal.account_id)[1].requests_per_minute

    # executions: the lifecycle's admission ------------------------------------------------------------
    def admit(self, *, account_id: str, sub: Submission) -> None:
        """Execution rate, before the submit transaction (a refused submission still spent its slot)."""
        _name, plan = self.plan_for(account_id)
        budget = self.hit(f"exec:{account_id}", plan.executions_per_minute)
        if not budget.allowed and self.enforce:
            wait = budget.retry_after(time.time())
            raise RateLimited(f"at most {plan.executions_per_minute} executions per {self._window_words()}; "
                              f"retry in {wait} s", retry_after=wait, code="execution_rate_limited")

    def on_queued(self, s: Session, *, account_id: str, sub: Submission, execution_id: str) -> None:
        """Daily quota, inside the submit transaction: a conditional increment of today's counter."""
        _name, plan = self.plan_for(account_id, session=s)
        now = self.clock.now()
        day = day_of(now)
        if self._days_day != day:  # today's counter rows this process has seen (saves an insert per submit)
            self._days_day, self._days_seen = day, set()
        known = account_id in self._days_seen
        if not known:
            ensure_day(s, account_id=account_id, day=day)
        quota = plan.executions_per_day
        stmt = _COUNT_EXECUTION if quota is None else _COUNT_EXECUTION_WITHIN
        params = {"b_account": account_id, "b_day": day, "b_quota": quota}
        conn = s.connection()  # a plain statement on the transaction's connection; its result has a rowcount
        res = conn.execute(stmt, params)
        if res.rowcount == 0 and known:  # the row may be gone (a rolled-back first insert): make sure, once
            ensure_day(s, account_id=account_id, day=day)
            res = conn.execute(stmt, params)
        if res.rowcount == 1:
            self._days_seen.add(account_id)
        if res.rowcount == 0:
            wait = seconds_to_midnight(now)
            raise RateLimited(f"the daily quota of {plan.executions_per_day} executions is used up; it resets at "
                              "00:00 UTC", retry_after=wait, code="daily_quota_exceeded")

    def executions_on(self, account_id: str, day: str) -> int:
        with self.db.read() as s:
            n = s.scalar(select(UsageDay.executions).where(UsageDay.account_id == account_id, UsageDay.day == day))
        return int(n or 0)

    # concurrency: the SQL queue's cap_filter -----------------------------------------------------------
    def claim_room(self, s: Session) -> _Room:
        """What each account may still start (running = live claimed jobs; the cap is its plan's)."""
        if not self.db.is_sqlite:
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIM_LOCK})
        now = self.clock.time()
        return _Room(running=live_claims(s, now),
                     cap=lambda account_id: self.plan_for(account_id, session=s)[1].concurrency)

    def _window_words(self) -> str:
        return "minute" if self.window_seconds == 60 else f"{self.window_seconds} s"


class _Room:
    """The SQL queue's Room: running counts from the claim's transaction, caps looked up once per account."""

    def __init__(self, *, running: dict[str, int], cap: Callable[[str], int]):
        self.running = running
        self._cap = cap
        self._caps: dict[str, int] = {}
        self.blocked = {account_id for account_id, n in running.items() if n >= self.cap(account_id)}

    def cap(self, account_id: str) -> int:
        if account_id not in self._caps:
            self._caps[account_id] = self._cap(account_id)
        return self._caps[account_id]

    def take(self, account_id: str) -> bool:
        if self.running.get(account_id, 0) >= self.cap(account_id):
            return False
        self.running[account_id] = self.running.get(account_id, 0) + 1
        return True


def seconds_to_midnight(now: datetime) -> int:
    """Seconds until the next 00:00 UTC (the daily quota's reset)."""
    midnight = datetime(now.year, now.month, now.day, tzinfo=now.tzinfo) + timedelta(days=1)
    return max(1, math.ceil((midnight - now).total_seconds()))


__all__ = ["OVERRIDABLE", "Budget", "LimitsService", "RateLimited", "seconds_to_midnight"]
