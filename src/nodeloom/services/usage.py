"""Usage: executions and credits per UTC day, and the `GET /api/v1/usage` summary.

The `usage_daily` row of an account and day is created on first use and then only incremented, inside
the transaction that accepts an execution (the daily quota is a conditional increment there) or that
charges a node, so the history always agrees with what was accepted and charged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, case, func, select, update
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


_USAGE_DAILY = cast(Table, UsageDay.__table__)


def day_of(moment: datetime) -> str:
    return moment.date().isoformat()


#: statements built once per dialect (every charge and every account's first submit of a day runs them), run on the
#: transaction's connection: they touch only the counter rows, nothing pending in the session
_NEW_DAY: dict[str, Any] = {}
_ADD_CREDITS = (update(UsageDay).where(UsageDay.account_id == bindparam("b_account"), UsageDay.day == bindparam("b_day"))
                .values(credits=UsageDay.credits + bindparam("b_amount", type_=UsageDay.credits.type)))


def ensure_day(s: Session, *, account_id: str, day: str) -> None:
    """Today's counter row for the account, made once (INSERT … ON CONFLICT DO NOTHING)."""
    conn = s.connection()
    dialect = conn.dialect.name
    stmt = _NEW_DAY.get(dialect)
    if stmt is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(_USAGE_DAILY).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(_USAGE_DAILY).on_conflict_do_nothing()
        _NEW_DAY[dialect] = stmt
    conn.execute(stmt, {"account_id": account_id, "day": day, "executions": 0, "credits": Decimal(0)})


def add_credits(s: Session, *, account_id: str, day: str, amount: Decimal) -> None:
    ensure_day(s, account_id=account_id, day=day)
    s.connection().execute(_ADD_CREDITS, {"b_account": account_id, "b_day": day, "b_amount": amount})


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


__all__ = ["UsageService", "add_credits", "day_of", "ensure_day"]
