"""Usage: executions and credits per UTC day, and the `GET /api/v1/usage` summary.

The `usage_daily` row of an account and day is created on first use and then only incremented, inside
the transaction that accepts an execution (the daily quota is a conditional increment there) or that
charges a node, so the history always agrees with what was accepted and charged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from nodeloom.clock import Clock
from nodeloom.errors import NotFound
from nodeloom.settings import PlanLimits
from nodeloom.storage.db import Database
from nodeloom.storage.models import Account
from nodeloom.storage.models_platform import CreditEntry, UsageDay


class Plans(Protocol):
    """Where an account's effective plan comes from (services/limits.py's LimitsService)."""

    window_seconds: int

    def plan_for(self, account_id: str) -> tuple[str, PlanLimits]: ...


#: credits still reserved by executions: their holds less what was charged or released
OPEN_HOLD = case((CreditEntry.kind == "hold", CreditEntry.amount),
                 (CreditEntry.kind.in_(("charge", "release")), -CreditEntry.amount), else_=0)


def day_of(moment: datetime) -> str:
    return moment.date().isoformat()


def insert_ignore(s: Session, model: Any, values: dict[str, Any]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL (creates a counter row exactly once)."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        s.execute(pg_insert(model).values(**values).on_conflict_do_nothing())
        return
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    s.execute(sqlite_insert(model).values(**values).on_conflict_do_nothing())


def ensure_day(s: Session, *, account_id: str, day: str) -> None:
    insert_ignore(s, UsageDay, {"account_id": account_id, "day": day, "executions": 0, "credits": Decimal(0)})


def add_credits(s: Session, *, account_id: str, day: str, amount: Decimal) -> None:
    ensure_day(s, account_id=account_id, day=day)
    s.execute(update(UsageDay).where(UsageDay.account_id == account_id, UsageDay.day == day)
              .values(credits=UsageDay.credits + amount).execution_options(synchronize_session=False))


class UsageService:
    def __init__(self, db: Database, *, limiter: Plans, clock: Clock):
        self.db = db
        self.limiter = limiter
        self.clock = clock

    def usage(self, account_id: str, *, days: int = 30) -> dict[str, Any]:
        """API.md "Usage": plan, balance, today's and this month's executions, limits, daily history."""
        today = self.clock.now().date()
        first = today - timedelta(days=days - 1)
        month_start = today.replace(day=1)
        since = min(first, month_start).isoformat()
        with self.db.read() as s:
            account = s.get(Account, account_id)
            if account is None:
                raise NotFound("account not found")
            rows = s.execute(select(UsageDay.day, UsageDay.executions, UsageDay.credits)
                             .where(UsageDay.account_id == account_id, UsageDay.day >= since)).all()
            balance = account.credits
            held = s.scalar(select(func.coalesce(func.sum(OPEN_HOLD), 0))
                            .where(CreditEntry.account_id == account_id, CreditEntry.execution_id.is_not(None)))
        plan_name, plan = self.limiter.plan_for(account_id)
        by_day = {d: (int(n), Decimal(c or 0)) for d, n, c in rows}
        month = sum(n for d, (n, _c) in by_day.items() if d >= month_start.isoformat())
        daily = []
        for i in range(days):
            d = (first + timedelta(days=i)).isoformat()
            n, c = by_day.get(d, (0, Decimal(0)))
            daily.append({"date": d, "executions": n, "credits": float(c)})
        return {
            "plan": plan_name,
            "credits": {"balance": float(balance), "held": float(held or 0)},
            "executions": {"today": by_day.get(today.isoformat(), (0, 0))[0], "dailyLimit": plan.executions_per_day,
                           "thisMonth": month},
            "rateLimits": {"requestsPerMinute": plan.requests_per_minute,
                           "executionsPerMinute": plan.executions_per_minute, "concurrency": plan.concurrency,
                           "windowSeconds": self.limiter.window_seconds},
            "daily": daily,
        }


__all__ = ["UsageService", "add_credits", "day_of", "ensure_day", "insert_ignore"]
