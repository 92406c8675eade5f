"""The races again on PostgreSQL, where transactions really run side by side (SQLite serialises writers)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa
from tests.platform.conftest import balance, error_code, make_account, priced_graph
from tests.support.server import LiveServer, publish, require_service, wait_status

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"nodeloom_platform_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_races_on_postgres(platform: Callable[..., LiveServer], postgres_url: str) -> None:
    server = platform(database_url=postgres_url)
    account_id, key = make_account(server, plan="enterprise", credits=12, requests_per_minute=10_000,
                                   executions_per_minute=1000)
    with server.client(key, limits=httpx.Limits(max_connections=40)) as c:
        wid = publish(c, priced_graph())
        barrier = threading.Barrier(30)

        def racing(i: int) -> httpx.Response:
            barrier.wait()
            return c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": str(i)}})

        with ThreadPoolExecutor(30) as pool:
            responses = list(pool.map(racing, range(30)))
        accepted = [r.json()["executionId"] for r in responses if r.status_code == 202]
        assert len(accepted) == 2
        assert all(error_code(r) == "insufficient_credits" for r in responses if r.status_code != 202)
        for eid in accepted:
            wait_status(c, eid, {"COMPLETED"})
        assert balance(server, account_id) == 2

        server.services.billing.grant(account_id, 100)
        barrier = threading.Barrier(30)

        def duplicate(_: int) -> httpx.Response:
            barrier.wait()
            return c.post(f"/api/v1/workflows/{wid}/execute", json={}, headers={"Idempotency-Key": "pg"})

        with ThreadPoolExecutor(30) as pool:
            duplicates = list(pool.map(duplicate, range(30)))
        assert {r.status_code for r in duplicates} <= {202, 409}
        assert len({r.json()["executionId"] for r in duplicates if r.status_code == 202}) == 1
        assert len(c.get("/api/v1/workflows/executions", params={"limit": 100}).json()["data"]) == 3
