"""One set of cases for LimitsService's request rates, run over both storages of its moving window: the process's
memory (the embedded default) and Redis (`redis_url`), where every API process spends one budget.

Each test gets its own `rate_limit_namespace`, so Redis keys never meet another test's, and removes its keys at the
end. The window is real time, so it is short enough for Redis to expire what a test leaves behind, and long enough
that no hit ever ages out while a test runs: nothing here sleeps through a window or depends on how fast it runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.support.server import make_settings, require_service

from nodeloom.clock import SystemClock
from nodeloom.services.accounts import AccountService, Principal
from nodeloom.services.limits import LimitsService
from nodeloom.storage.db import Database
from nodeloom.storage.migrate import upgrade

REDIS_URL = "redis://127.0.0.1:6379/0"  # the rate-limit tests' database (see test_queue_contract.py)
WINDOW = 30  # seconds
LIMIT = 3
SLACK = 0.01  # Redis keeps the window's timestamps to the millisecond
SECRET = "test-secret-key-0123456789"

# distinct budgets, so that picking the wrong one cannot pass
PLANS = {"free": {"requests_per_minute": 7}, "pro": {"requests_per_minute": 11}}
ANONYMOUS = 5
SESSION = 13


@dataclass(frozen=True)
class Storage:
    name: str
    redis_url: str | None
    shared: bool
    """Two LimitsService instances with the same settings (two API processes) spend one budget."""


STORAGES = [Storage("memory", None, shared=False), Storage("redis", REDIS_URL, shared=True)]

MakeLimits = Callable[..., LimitsService]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path_factory.mktemp('limits-contract') / 'limits.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture(params=STORAGES, ids=[s.name for s in STORAGES])
def storage(request: pytest.FixtureRequest) -> Storage:
    param: Storage = request.param
    if param.redis_url is not None:
        require_service("Redis", "127.0.0.1", 6379)
    return param


@pytest.fixture
def make_limits(storage: Storage, db: Database, tmp_path: Path) -> Iterator[MakeLimits]:
    """LimitsService as compose.build makes it, for this test's namespace unless another is named."""
    namespaces: set[str] = set()
    default = f"contract-{uuid.uuid4().hex[:16]}"

    def make(*, namespace: str = default, **overrides: Any) -> LimitsService:
        namespaces.add(namespace)
        settings = make_settings(tmp_path, redis_url=storage.redis_url, rate_limit_namespace=namespace,
                                 rate_limit_window_seconds=WINDOW, plans=PLANS,
                                 anonymous_requests_per_minute=ANONYMOUS, session_requests_per_minute=SESSION,
                                 **overrides)
        return LimitsService(db, settings=settings, clock=SystemClock())

    yield make
    if storage.redis_url is not None:
        import redis

        client = redis.Redis.from_url(storage.redis_url)
        for namespace in namespaces:
            for key in client.scan_iter(f"{namespace}:*"):
                client.delete(key)
        client.close()


def key() -> str:
    return f"acct:{uuid.uuid4().hex[:8]}"


# --- the contract -------------------------------------------------------------------------------------------

def test_hit_counts_down_and_refuses_past_the_limit(make_limits: MakeLimits) -> None:
    limiter, k = make_limits(), key()

    budgets = [limiter.hit(k, LIMIT) for _ in range(LIMIT + 2)]

    assert [b.allowed for b in budgets] == [True, True, True, False, False]
    assert [b.remaining for b in budgets] == [2, 1, 0, 0, 0]
    assert {b.limit for b in budgets} == {LIMIT}


def test_peek_does_not_spend(make_limits: MakeLimits) -> None:
    limiter, k = make_limits(), key()

    assert [limiter.peek(k, LIMIT).remaining for _ in range(LIMIT + 1)] == [LIMIT] * (LIMIT + 1)
    assert limiter.hit(k, LIMIT).remaining == LIMIT - 1
    first = limiter.peek(k, LIMIT)
    assert (first.allowed, first.remaining) == (True, LIMIT - 1)
    assert limiter.peek(k, LIMIT) == first

    limiter.hit(k, LIMIT)
    limiter.hit(k, LIMIT)
    spent = limiter.peek(k, LIMIT)
    assert (spent.allowed, spent.remaining) == (False, 0)  # a peek tells a refusal without making one


def test_separate_keys_have_separate_budgets(make_limits: MakeLimits) -> None:
    limiter, one, other = make_limits(), key(), key()
    for _ in range(LIMIT):
        limiter.hit(one, LIMIT)

    assert not limiter.hit(one, LIMIT).allowed
    fresh = limiter.hit(other, LIMIT)
    assert (fresh.allowed, fresh.remaining) == (True, LIMIT - 1)
    assert limiter.peek(one, LIMIT).remaining == 0


def test_reset_is_when_the_oldest_hit_leaves_the_window(make_limits: MakeLimits) -> None:
    limiter, k = make_limits(), key()

    before = time.time()
    idle = limiter.peek(k, LIMIT)
    first = limiter.hit(k, LIMIT)
    after = time.time()
    second = limiter.hit(k, LIMIT)

    # nothing spent yet: a whole window from now; spent: a window after the first hit, whatever came later
    assert before + WINDOW - SLACK <= idle.reset <= after + WINDOW + SLACK
    assert before + WINDOW - SLACK <= first.reset <= after + WINDOW + SLACK
    assert second.reset == pytest.approx(first.reset, abs=SLACK)
    assert 1 <= first.retry_after(time.time()) <= WINDOW


def test_processes_share_one_budget_only_on_a_shared_storage(storage: Storage, make_limits: MakeLimits) -> None:
    one, two, k = make_limits(), make_limits(), key()  # two API processes of one deployment
    assert one.shared is two.shared is storage.shared

    for _ in range(LIMIT):
        assert one.hit(k, LIMIT).allowed

    seen = two.peek(k, LIMIT)
    answer = two.hit(k, LIMIT)
    if storage.shared:
        assert (seen.remaining, answer.allowed, answer.remaining) == (0, False, 0)
    else:
        assert (seen.remaining, answer.allowed, answer.remaining) == (LIMIT, True, LIMIT - 1)


def test_a_namespace_is_a_budget_of_its_own(make_limits: MakeLimits) -> None:
    ours, theirs, k = make_limits(), make_limits(namespace=f"contract-{uuid.uuid4().hex[:16]}"), key()
    for _ in range(LIMIT):
        ours.hit(k, LIMIT)

    assert theirs.peek(k, LIMIT).remaining == LIMIT
    assert theirs.hit(k, LIMIT).allowed and not ours.hit(k, LIMIT).allowed


def test_request_budget_is_the_plans_for_an_account_and_the_addresss_otherwise(
        make_limits: MakeLimits, db: Database) -> None:
    limiter = make_limits()
    accounts = AccountService(db, secret_key=SECRET, clock=SystemClock())
    free = accounts.create_account(name="free", plan="free", credits=0).id
    pro = accounts.create_account(name="pro", plan="pro", credits=0).id

    def budget(principal: Principal | None, **kwargs: Any) -> tuple[str, int]:
        return limiter.request_budget(principal, client="203.0.113.9", **kwargs)

    assert budget(None) == ("addr:203.0.113.9", ANONYMOUS)
    assert budget(Principal(account_id=free, scopes=frozenset(), key_id="key_1")) == (f"acct:{free}", 7)
    assert budget(Principal(account_id=pro, scopes=frozenset(), key_id="key_2")) == (f"acct:{pro}", 11)
    assert budget(Principal(account_id=pro, scopes=frozenset(), user_id="usr_1"), session_id="ses_1") == (
        "session:ses_1", SESSION)

    limiter.set_limits(pro, requests_per_minute=17)  # an operator's override of the plan
    assert budget(Principal(account_id=pro, scopes=frozenset())) == (f"acct:{pro}", 17)

    limiter.set_plan(free, "pro")
    assert budget(Principal(account_id=free, scopes=frozenset())) == (f"acct:{free}", 11)
