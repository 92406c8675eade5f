"""The worst templates run beside a live server: /healthz keeps answering (a liveness bound on each probe, not a
timing), and the execution ends FAILED with the budget's code instead of freezing the server."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from tests.support.server import LiveServer, publish, text_graph, wait_status

NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}"


def test_healthz_answers_while_a_template_spends_its_budget(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(sandbox_cpu_seconds=3, sandbox_memory_mb=128)
    _acct, key = server.account()
    with server.client(key) as c:
        r = c.post(f"/api/v1/workflows/{publish(c, text_graph(NESTED_LOOPS))}/execute", json={"inputs": {}})
        assert r.status_code == 202, r.text
        eid = r.json()["executionId"]
        wait_status(c, eid, {"RUNNING", "FAILED"})
        probes = 0
        while c.get(f"/api/v1/workflows/executions/{eid}/poll").json()["status"] == "RUNNING":
            # the probe is bounded at 2 s: a server whose event loop renders the template never answers it
            assert httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
            probes += 1
        failed = wait_status(c, eid, {"FAILED"})
        assert failed["error"]["code"] in ("node_timeout", "node_memory"), failed["error"]
        assert probes > 0
        # the server goes on serving: a plain template right after
        ok = c.post(f"/api/v1/workflows/{publish(c, text_graph())}/execute", json={"inputs": {}}).json()
        assert wait_status(c, ok["executionId"], {"COMPLETED"})["outputs"]["greeting"] == "Hello world!"


def test_a_huge_string_in_a_template_fails_with_node_memory(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(sandbox_memory_mb=128)
    _acct, key = server.account()
    with server.client(key) as c:
        wid = publish(c, text_graph('{{ "a" * 300000000 }}'))
        r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}})
        failed = wait_status(c, r.json()["executionId"], {"FAILED", "COMPLETED"})
        assert failed["status"] == "FAILED" and failed["error"]["code"] == "node_memory", failed


def test_a_pattern_with_a_huge_counted_repetition_is_refused_with_422(make_server: Callable[..., LiveServer]) -> None:
    server = make_server()
    _acct, key = server.account()
    graph = {"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}},
        {"id": "re", "type": "text.regex_extract", "params": {"pattern": "x{1000000000}"},
         "inputs": {"text": {"from": "p", "output": "text"}}},
        {"id": "out", "type": "output.json", "params": {"name": "m"}, "inputs": {"value": {"from": "re", "output": "match"}}},
    ]}
    with server.client(key) as c:
        r = c.post("/api/v1/workflows", json={"name": "bomb", "graph": graph})
        assert r.status_code == 422, r.text
        assert "repetition" in r.text
