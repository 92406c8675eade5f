"""Credits: pricing, the hold taken at submit, per-node charges, the release at the end.

The balance (`accounts.credits`) only ever goes down through a conditional update
(`… SET credits = credits - :x WHERE credits >= :x`), so concurrent submissions racing for the last
credits cannot drive it below zero: one wins, the others answer 402. The lifecycle of an execution:

1. submit — the whole graph is priced and the estimate held, in the transaction that creates the
   execution (402 and nothing queued when the balance is short);
2. a fan-out whose list is longer than the one element the estimate counted must hold the extra
   elements before they start (`admit`), or the node fails with `insufficient_credits`;
3. node completed — the node's price (times its elements) is settled from the hold, once per
   (execution, node): a retried node is never charged twice; cache hits and failed nodes are free;
4. terminal — whatever is still held goes back to the balance.

Nodes that run in segments elsewhere (`comfyui.*`, engine/segments.py) are priced per segment, by run-second:
a segment is one line (its first node's id, type `comfyui`, its `nodes`) holding `amount × maxSeconds`, and is
charged `⌈seconds it ran⌉ × amount`, capped at that, by whoever ran it (`charge_run_seconds`) — also when it failed
or was cancelled.

A hosted node's run that the account's own vendor key served (recorded by the node in its memory as
`byok`) costs the node type's `byok_credits` instead of its price.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, func, select, update
from sqlalchemy.orm import Session

from nodeloom.clock import Clock
from nodeloom.engine.errors import NodeError
from nodeloom.engine.graph import Graph, NodeInstance
from nodeloom.engine.node import Node
from nodeloom.engine.segments import plan
from nodeloom.errors import ApiError, NotFound, ValidationFailed
from nodeloom.services.hosted import node_providers, own_key_runs
from nodeloom.services.lifecycle import ExecutionListener
from nodeloom.services.submission import Submission
from nodeloom.services.usage import OPEN_HOLD, add_credits, day_of
from nodeloom.storage.db import Database
from nodeloom.storage.models import Account, Execution, ExecutionNode
from nodeloom.storage.models_platform import EXECUTION_WIDE, CreditEntry

log = logging.getLogger("nodeloom.billing")

CENT = Decimal("0.0001")  # credits are kept to four places (the column's scale)
#: tolerance for SQLite, whose NUMERIC arithmetic is floating point; PostgreSQL's is exact
EPSILON = Decimal("0.00005")
#: what an execution still holds (built once: every execution's end asks)
_HELD = select(func.coalesce(func.sum(OPEN_HOLD), 0)).where(CreditEntry.execution_id == bindparam("execution_id"))
#: is there a ledger entry of this kind for this node of the execution (asked as every charge and every end settles)
_ENTRY = (select(CreditEntry.id).where(CreditEntry.execution_id == bindparam("execution_id"),
                                       CreditEntry.node_id == bindparam("node_id"),
                                       CreditEntry.kind == bindparam("kind")).limit(1))
_AMOUNT = bindparam("amount", type_=Account.credits.type)
#: the balance moves (built once: every submit takes, every end gives back)
_TAKE = (update(Account).where(Account.id == bindparam("account_id"), Account.credits + EPSILON >= _AMOUNT)
         .values(credits=func.round(Account.credits - _AMOUNT, 4)).execution_options(synchronize_session=False))
_GIVE = (update(Account).where(Account.id == bindparam("account_id"))
         .values(credits=func.round(Account.credits + _AMOUNT, 4)).execution_options(synchronize_session=False))


def credits(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class InsufficientCredits(ApiError):
    status = 402
    code = "insufficient_credits"

    def __init__(self, message: str, **extra: Any):
        super().__init__(message, **extra)


@dataclass(frozen=True)
class NodePrice:
    node_id: str
    node_type: str
    credits: Decimal  # for one run; for a fan-out, for one element
    fan_out: bool
    nodes: tuple[str, ...] = ()  # a segment's nodes (its line is priced by run-second)

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nodeId": self.node_id, "nodeType": self.node_type, "credits": float(self.credits)}
        if self.fan_out:
            out["perElement"] = True
        if self.nodes:
            out["nodes"] = list(self.nodes)
        return out


def segment_hold(node_type: type[Node]) -> Decimal:
    """What one segment whose first node is of `node_type` holds: its price per run-second × its maximum seconds."""
    return credits(max(0.0, float(node_type.credits)) * max(0.0, float(getattr(node_type, "max_seconds", 0) or 0)))


@dataclass(frozen=True)
class Estimate:
    credits: Decimal
    breakdown: list[NodePrice]
    complete: bool  # False when fan-out lengths are only known at run time (one element counted)

    def public_breakdown(self) -> list[dict[str, Any]]:
        return [p.public() for p in self.breakdown]


#: which providers an account brings its own vendor key for (ProviderKeyService.stored)
OwnKeys = Callable[[str], Collection[str]]


class BillingService(ExecutionListener):
    def __init__(self, db: Database, *, clock: Clock, own_keys: OwnKeys | None = None):
        self.db = db
        self.clock = clock
        self.own_keys: OwnKeys = own_keys or (lambda _account_id: ())

    # pricing -----------------------------------------------------------------------------------------
    def unit_price(self, node_type: type[Node], params: dict[str, Any], *, own: Collection[str] = ()) -> Decimal:
        """What one run is priced at before it runs: `byokCredits` when the account has its own key for one
        of the node's vendors (those are tried first), else the node's price. The charge follows what
        actually served the run (`on_node_completed`)."""
        if own and set(node_providers(node_type)) & set(own):
            return credits(node_type.byok_credits)
        return credits(max(0.0, float(node_type.price(params))))

    def estimate(self, graph: Graph, *, account_id: str) -> Estimate:
        # the account's own vendor keys matter only to hosted nodes: skip the lookup for local-only graphs
        hosted = any(node_providers(node.type) for node in graph.nodes.values())
        own = self.own_keys(account_id) if hosted else ()
        breakdown: list[NodePrice] = []
        segments = {seg.first: seg for seg in plan(graph)}
        for nid in graph.order:
            node = graph.nodes[nid]
            if node.type.segment:
                seg = segments.get(nid)
                if seg is not None:
                    breakdown.append(NodePrice(nid, seg.kind, segment_hold(node.type), False, seg.members))
                continue
            price = self.unit_price(node.type, node.params, own=own)
            if node.type.role != "node" and price == 0:
                continue
            breakdown.append(NodePrice(nid, node.type.type, price, bool(node.fanned_inputs)))
        total = sum((p.credits for p in breakdown), Decimal(0))
        complete = not any(p.fan_out and p.credits > 0 for p in breakdown)
        return Estimate(credits=credits(total), breakdown=breakdown, complete=complete)

    def quote(self, graph: Graph, *, account_id: str) -> dict[str, Any]:
        """The body of `POST /workflows/{id}/estimate`."""
        est = self.estimate(graph, account_id=account_id)
        balance = self.balance(account_id)
        return {"credits": float(est.credits), "balance": float(balance), "sufficient": balance >= est.credits,
                "estimateComplete": est.complete, "breakdown": est.public_breakdown()}

    def balance(self, account_id: str) -> Decimal:
        with self.db.read() as s:
            value = s.scalar(select(Account.credits).where(Account.id == account_id))
        if value is None:
            raise NotFound("account not found")
        return credits(value)

    def grant(self, account_id: str, amount: float | Decimal, *, note: str | None = None) -> Decimal:
        value = credits(amount)
        if value <= 0:
            raise ValidationFailed("grant a positive amount", [{"path": "amount", "message": "must be > 0"}])
        with self.db.write() as s:
            res = cast(CursorResult[Any], s.execute(update(Account).where(Account.id == account_id)
                                                    .values(credits=func.round(Account.credits + value, 4))
                                                    .execution_options(synchronize_session=False)))
            if res.rowcount != 1:
                raise NotFound("account not found")
            s.add(CreditEntry(account_id=account_id, kind="grant", amount=value, note=note,
                              created_at=self.clock.now()))
        return self.balance(account_id)

    def ledger(self, account_id: str, *, execution_id: str | None = None) -> list[dict[str, Any]]:
        stmt = select(CreditEntry).where(CreditEntry.account_id == account_id)
        if execution_id is not None:
            stmt = stmt.where(CreditEntry.execution_id == execution_id)
        with self.db.read() as s:
            rows = s.scalars(stmt.order_by(CreditEntry.id)).all()
        return [{"kind": r.kind, "amount": float(r.amount), "executionId": r.execution_id, "nodeId": r.node_id,
                 "note": r.note} for r in rows]

    # the balance ------------------------------------------------------------------------------------
    @staticmethod
    def _take(s: Session, account_id: str, amount: Decimal) -> bool:
        """Move `amount` out of the balance if it is there; never below zero, whoever else is spending."""
        res = cast(CursorResult[Any], s.connection().execute(_TAKE, {"account_id": account_id, "amount": amount}))
        return res.rowcount == 1

    @staticmethod
    def _give(s: Session, account_id: str, amount: Decimal) -> None:
        s.connection().execute(_GIVE, {"account_id": account_id, "amount": amount})

    @staticmethod
    def _held(s: Session, execution_id: str) -> Decimal:
        # the ledger's rows this transaction added must count: flush them — and only them, not every pending change
        # of the transaction (a batch of events holds many)
        if any(isinstance(row, CreditEntry) for row in s.new):
            s.flush([row for row in s.new if isinstance(row, CreditEntry)])
        value = s.connection().scalar(_HELD, {"execution_id": execution_id})
        return credits(value or 0)

    @staticmethod
    def _entry(s: Session, execution_id: str, node_id: str, kind: str) -> bool:
        """Whether the ledger has this entry: one this transaction added and has not flushed yet, or a stored one
        (asked on the connection: no flush of every pending change of the transaction first)."""
        if any(isinstance(row, CreditEntry) and row.execution_id == execution_id and row.node_id == node_id
               and row.kind == kind for row in s.new):
            return True
        return s.connection().scalar(_ENTRY, {"execution_id": execution_id, "node_id": node_id,
                                              "kind": kind}) is not None

    # the lifecycle: queued (the hold), node completed (the charge), terminal (the release) ------------
    def on_queued(self, s: Session, *, account_id: str, sub: Submission, execution_id: str) -> None:
        """Hold the estimate in the transaction that creates the execution, or refuse with 402."""
        est = self.estimate(sub.graph, account_id=account_id)
        if est.credits <= 0:
            return
        if not self._take(s, account_id, est.credits):
            balance = credits(s.scalar(select(Account.credits).where(Account.id == account_id)) or 0)
            raise InsufficientCredits(
                f"this execution needs {est.credits.normalize():f} credits and the balance is "
                f"{balance.normalize():f}", required=float(est.credits), balance=float(balance),
                breakdown=est.public_breakdown())
        s.add(CreditEntry(account_id=account_id, kind="hold", amount=est.credits, execution_id=execution_id,
                          node_id=EXECUTION_WIDE, created_at=self.clock.now()))

    # running: the engine's fan-out admission (RunOptions.admit) --------------------------------------
    async def admit_fanout(self, execution_id: str, node: NodeInstance, elements: int) -> None:
        """RunOptions.admit: a fan-out of `elements` may start only once the extra elements are held."""
        if elements > 1:
            await asyncio.to_thread(self._admit, execution_id, node, elements)

    def _admit(self, execution_id: str, node: NodeInstance, elements: int) -> None:
        with self.db.write() as s:
            ex = s.get(Execution, execution_id)
            if ex is None:
                return
            unit = self.unit_price(node.type, node.params, own=self.own_keys(ex.account_id))
            extra = credits(unit * (elements - 1))
            if extra <= 0 or self._entry(s, execution_id, node.id, "hold"):
                return  # free, or admitted by an earlier attempt of this execution
            if not self._take(s, ex.account_id, extra):
                balance = credits(s.scalar(select(Account.credits).where(Account.id == ex.account_id)) or 0)
                raise NodeError(f"node '{node.id}' runs {elements} times and needs {extra.normalize():f} more "
                                f"credits than were held; the balance is {balance.normalize():f}",
                                code="insufficient_credits", node_id=node.id)
            s.add(CreditEntry(account_id=ex.account_id, kind="hold", amount=extra, execution_id=execution_id,
                              node_id=node.id, note=f"fan-out: {elements} elements", created_at=self.clock.now()))

    def on_node_completed(self, s: Session, ex: Execution, row: ExecutionNode, node: NodeInstance,
                          data: dict[str, Any]) -> None:
        """Settle a node that ran from the execution's hold (once per node)."""
        if node.type.segment:  # a segment is charged by run-second, on its first node's completion (or its end)
            seconds = data.get("runSeconds")
            if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
                self._settle(s, ex, node.id, self._run_second_amount(node.type, float(seconds)), row,
                             note=f"ComfyUI: {float(seconds):.3f} s")
            return
        if data.get("cached") or data.get("skipped"):
            return
        elements = data.get("elements")
        count = int(elements) if isinstance(elements, int) and node.fanned_inputs else 1
        own_runs = min(count, own_key_runs(row.memory))  # runs the account's own vendor key served
        amount = credits(self.unit_price(node.type, node.params) * (count - own_runs)
                         + credits(node.type.byok_credits) * own_runs)
        self._settle(s, ex, node.id, amount, row)

    def charge_run_seconds(self, execution_id: str, node_id: str, seconds: float, *, node_type: type[Node],
                           note: str | None = None) -> Decimal:
        """Charge a segment (`node_id` its first node) ⌈seconds⌉ × its price per second, capped at its hold; once.
        Returns what was charged."""
        amount = self._run_second_amount(node_type, seconds)
        with self.db.write() as s:
            ex = s.get(Execution, execution_id)
            if ex is None:
                return Decimal(0)
            row = s.scalar(select(ExecutionNode).where(ExecutionNode.execution_id == execution_id,
                                                       ExecutionNode.node_id == node_id))
            return self._settle(s, ex, node_id, amount, row, note=note)

    @staticmethod
    def _run_second_amount(node_type: type[Node], seconds: float) -> Decimal:
        """⌈seconds⌉ × the price per second, capped at the segment's hold."""
        per_second = credits(max(0.0, float(node_type.credits)))
        return min(credits(per_second * math.ceil(max(0.0, seconds))), segment_hold(node_type))

    def _settle(self, s: Session, ex: Execution, node_id: str, amount: Decimal, row: ExecutionNode | None,
                note: str | None = None) -> Decimal:
        """Charge `amount` for one node from the execution's hold (beyond it only if the balance allows)."""
        if amount <= 0 or self._entry(s, ex.id, node_id, "charge"):
            return Decimal(0)
        held = self._held(s, ex.id)
        if amount > held:
            shortfall = amount - held
            if not self._entry(s, ex.id, node_id, "hold") and self._take(s, ex.account_id, shortfall):
                s.add(CreditEntry(account_id=ex.account_id, kind="hold", amount=shortfall, execution_id=ex.id,
                                  node_id=node_id, note="settled beyond the estimate", created_at=self.clock.now()))
            else:
                log.warning("execution %s node %s costs %s but only %s is held; charging what is held",
                            ex.id, node_id, amount, held)
                amount = held
        if amount <= 0:
            return Decimal(0)
        now = self.clock.now()
        s.add(CreditEntry(account_id=ex.account_id, kind="charge", amount=amount, execution_id=ex.id,
                          node_id=node_id, note=note, created_at=now))
        if row is not None:
            row.credits = amount
        ex.credits_used = credits((ex.credits_used or 0) + amount)
        add_credits(s, account_id=ex.account_id, day=day_of(now), amount=amount)
        return amount

    def on_terminal(self, s: Session, ex: Execution) -> None:
        """Give back whatever the execution still holds (however it ended)."""
        left = self._held(s, ex.id)
        if left <= 0 or self._entry(s, ex.id, EXECUTION_WIDE, "release"):
            return
        self._give(s, ex.account_id, left)
        s.add(CreditEntry(account_id=ex.account_id, kind="release", amount=left, execution_id=ex.id,
                          node_id=EXECUTION_WIDE, created_at=self.clock.now()))


__all__ = ["BillingService", "Estimate", "InsufficientCredits", "NodePrice", "credits"]
