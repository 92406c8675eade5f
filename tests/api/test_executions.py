"""Execute, poll, Prefer: wait, queue position, SSE with resume, cancel, listing, deletion, inputs."""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.support.server import delay_graph, publish, run_to_end, text_graph, wait_status


def png(w: int = 64, h: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


IMAGE_GRAPH = {"nodes": [
    {"id": "img", "type": "input.image", "params": {"name": "image", "required": True}},
    {"id": "rs", "type": "image.resize", "inputs": {"image": {"from": "img", "output": "image"}},
     "params": {"width": 32, "height": 32, "mode": "fill"}},
    {"id": "out", "type": "output.image", "inputs": {"image": {"from": "rs", "output": "image"}},
     "params": {"name": "thumb"}},
]}


def test_execute_poll_and_download(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, IMAGE_GRAPH)
    up = c.post("/api/v1/uploads", files={"file": ("in.png", png(), "image/png")})
    assert up.status_code == 201
    file_id = up.json()["fileId"]
    assert up.json()["contentType"] == "image/png" and up.json()["size"] > 0
    r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"image": file_id}})
    assert r.status_code == 202
    accepted = r.json()
    assert accepted["status"] == "QUEUED" and accepted["executionId"].startswith("ex_")
    assert accepted["pollUrl"] == f"/api/v1/workflows/executions/{accepted['executionId']}/poll"
    body = wait_status(c, accepted["executionId"], {"COMPLETED", "FAILED"})
    assert body["status"] == "COMPLETED", body
    assert set(body) >= {"executionId", "workflowId", "version", "status", "progress", "createdAt", "startedAt",
                         "completedAt", "creditsUsed", "outputs", "nodes", "error"}
    assert body["progress"] == 1.0 and body["version"] == 1 and body["error"] is None
    thumb = body["outputs"]["thumb"]
    assert thumb["contentType"] == "image/png" and (thumb["width"], thumb["height"]) == (32, 32)
    assert set(body["nodes"]) == {"img", "rs", "out"}
    assert all(n["status"] == "COMPLETED" and n["cached"] is False for n in body["nodes"].values())
    assert body["nodes"]["rs"]["outputs"]["image"]["width"] == 32
    # the signed URL works without any header
    got = httpx.get(thumb["url"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(got.content)).size == (32, 32)


def test_signed_urls_refuse_tampering_and_expiry(make_server: Any) -> None:
    server = make_server(signed_url_ttl_seconds=2)
    _a, key = server.account()
    with server.client(key) as c:
        up = c.post("/api/v1/uploads", files={"file": ("in.png", png(), "image/png")}).json()
    url = up["url"]
    assert httpx.get(url).status_code == 200
    base, query = url.split("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    flipped = "B" if params["sig"][0] == "A" else "A"  # always differs from the real first character
    bad_sig = f"{base}?exp={params['exp']}&sig={flipped + params['sig'][1:]}"
    later = f"{base}?exp={int(params['exp']) + 1000}&sig={params['sig']}"
    other_file = url.replace(up["fileId"], up["fileId"][:-1] + ("0" if up["fileId"][-1] != "0" else "1"))
    for tampered in (bad_sig, later, other_file, base, f"{base}?exp=abc&sig=x"):
        r = httpx.get(tampered)
        assert r.status_code == 403 and r.json()["error"]["code"] == "invalid_signature", tampered
    time.sleep(3)
    r = httpx.get(url)
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]


def test_inputs_are_checked(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, {"nodes": [
        {"id": "n", "type": "input.integer", "params": {"name": "count", "required": True, "min": 1, "max": 5}},
        {"id": "t", "type": "input.text", "params": {"name": "title"}},
        {"id": "b", "type": "input.boolean", "params": {"name": "flag", "default": False}},
        {"id": "o", "type": "output.json", "inputs": {"value": {"from": "n", "output": "value"}}, "params": {"name": "n"}},
    ]})

    def details(inputs: Any) -> list[dict[str, str]]:
        r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": inputs})
        assert r.status_code == 422, r.text
        return r.json()["error"]["details"]

    assert details({}) == [{"path": "inputs.count", "message": "missing required input 'count'"}]
    assert details({"count": "three"})[0]["path"] == "inputs.count"
    assert details({"count": 9})[0]["message"] == "must be <= 5"
    assert details({"count": 2, "title": 5})[0]["path"] == "inputs.title"
    assert details({"count": 2, "flag": "yes"})[0]["path"] == "inputs.flag"
    assert details({"count": 2, "colour": "red"})[0]["path"] == "inputs.colour"
    too_deep = details({"count": 2, "title": json.loads("[" * 500 + "]" * 500)})  # refused before it is stored
    assert too_deep == [{"path": "inputs.title", "message": "nested more than 64 levels deep"}]
    r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": []})
    assert r.status_code == 422
    assert run_to_end(c, wid, {"count": 3})["outputs"] == {"n": 3}


def test_image_input_by_data_uri_and_refused_private_url(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, IMAGE_GRAPH)
    data_uri = "data:image/png;base64," + base64.b64encode(png(100, 50)).decode()
    done = run_to_end(c, wid, {"image": data_uri})
    assert done["status"] == "COMPLETED" and done["outputs"]["thumb"]["width"] == 32
    for url in ("https://127.0.0.1:1/x.png", "https://169.254.169.254/latest/meta-data", "https://[::1]/a.png",
                "https://2130706433/a.png"):
        failed = run_to_end(c, wid, {"image": url})
        assert failed["status"] == "FAILED"
        assert failed["error"]["nodeId"] == "img" and failed["error"]["code"] == "fetch_failed"
    r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"image": "http://example.com/a.png"}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "inputs.image"  # https only
    r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"image": "ftp://x/y.png"}})
    assert r.status_code == 422


def test_prefer_wait(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, text_graph())
    r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "you"}}, headers={"Prefer": "wait=10"})
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED"
    assert r.json()["outputs"] == {"greeting": "Hello you!"}
    slow = publish(c, delay_graph(3))
    r = c.post(f"/api/v1/workflows/{slow}/execute", json={}, headers={"Prefer": "wait=1"})
    assert r.status_code == 202 and r.json()["status"] == "QUEUED"


def test_queue_position(make_server: Any) -> None:
    server = make_server(worker_concurrency=1)
    _a, key = server.account()
    with server.client(key) as c:
        wid = publish(c, delay_graph(1.5))
        ids = [c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"] for _ in range(3)]
        wait_status(c, ids[0], {"RUNNING"})
        polls = [c.get(f"/api/v1/workflows/executions/{i}/poll").json() for i in ids]
        assert "queuePosition" not in polls[0]
        assert [p["queuePosition"] for p in polls[1:]] == [0, 1]
        for i in ids:
            c.post(f"/api/v1/workflows/executions/{i}/cancel")


def read_sse(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with client.stream("GET", path, headers=headers or {}, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        current: dict[str, Any] = {}
        for line in r.iter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and current:
                events.append(current)
                current = {}
    return events


def test_sse_replays_follows_live_and_resumes(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, delay_graph(1.2))
    eid = c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"]
    live = read_sse(c, f"/api/v1/workflows/executions/{eid}/events")  # follows until the terminal event
    types = [e["event"] for e in live]
    assert types[0] == "execution.started" and types[-1] == "execution.completed"
    assert "node.progress" in types and types.count("node.completed") == 3
    ids = [e["id"] for e in live]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # a finished execution replays everything from the first event, then ends at once
    assert read_sse(c, f"/api/v1/workflows/executions/{eid}/events") == live
    middle = ids[len(ids) // 2]
    resumed = read_sse(c, f"/api/v1/workflows/executions/{eid}/events", {"Last-Event-ID": str(middle)})
    assert resumed == [e for e in live if e["id"] > middle]
    assert live[-1]["data"]["outputs"] == {"value": "x"}
    # an id that is not one of ours (not ASCII digits, or past any 64-bit sequence) replays from the first
    for odd in ("999999999999999999999", "-3", "abc"):
        assert read_sse(c, f"/api/v1/workflows/executions/{eid}/events", {"Last-Event-ID": odd}) == live
    assert read_sse(c, f"/api/v1/workflows/executions/{eid}/events?lastEventId=%C2%B2") == live  # "²" is a digit


def test_cancel_running_and_finished(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, delay_graph(30))
    eid = c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"]
    wait_status(c, eid, {"RUNNING"})
    assert c.post(f"/api/v1/workflows/executions/{eid}/cancel").status_code == 202
    body = wait_status(c, eid, {"CANCELLED"}, timeout=10)
    assert body["nodes"]["wait"]["status"] == "CANCELLED"
    assert body["nodes"]["out"]["status"] == "QUEUED"
    r = c.post(f"/api/v1/workflows/executions/{eid}/cancel")
    assert r.status_code == 409
    events = read_sse(c, f"/api/v1/workflows/executions/{eid}/events")
    assert events[-1]["event"] == "execution.cancelled"


def test_cancel_queued(make_server: Any) -> None:
    server = make_server(worker_concurrency=1)
    _a, key = server.account()
    with server.client(key) as c:
        wid = publish(c, delay_graph(2))
        first = c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"]
        second = c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"]
        wait_status(c, first, {"RUNNING"})
        assert c.post(f"/api/v1/workflows/executions/{second}/cancel").status_code == 202
        assert c.get(f"/api/v1/workflows/executions/{second}/poll").json()["status"] == "CANCELLED"
        c.post(f"/api/v1/workflows/executions/{first}/cancel")


def test_failed_node_fails_the_execution(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, {"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}},
        {"id": "f", "type": "test.fail", "params": {"message": "the model exploded"},
         "inputs": {"value": {"from": "p", "output": "text"}}},
    ]})
    body = run_to_end(c, wid)
    assert body["status"] == "FAILED"
    assert body["error"] == {"code": "test_failure", "message": "the model exploded", "nodeId": "f"}
    assert body["nodes"]["f"]["status"] == "FAILED" and body["nodes"]["p"]["status"] == "COMPLETED"


def test_list_filters_and_cursor(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    w1 = publish(c, text_graph())
    w2 = publish(c, {"nodes": [{"id": "f", "type": "test.fail"}]})
    ids = [run_to_end(c, w1)["executionId"] for _ in range(3)] + [run_to_end(c, w2)["executionId"]]
    listed = c.get("/api/v1/workflows/executions").json()["data"]
    assert [e["executionId"] for e in listed] == list(reversed(ids))
    assert {e["executionId"] for e in c.get("/api/v1/workflows/executions",
                                            params={"workflowId": w2}).json()["data"]} == {ids[3]}
    failed = c.get("/api/v1/workflows/executions", params={"status": "FAILED"}).json()["data"]
    assert [e["executionId"] for e in failed] == [ids[3]]
    page1 = c.get("/api/v1/workflows/executions", params={"limit": 3}).json()
    page2 = c.get("/api/v1/workflows/executions", params={"limit": 3, "cursor": page1["nextCursor"]}).json()
    assert [e["executionId"] for e in page1["data"] + page2["data"]] == list(reversed(ids))
    assert page2["nextCursor"] is None
    assert c.get("/api/v1/workflows/executions", params={"status": "WEIRD"}).status_code == 422


def test_delete_execution_and_its_files(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, IMAGE_GRAPH)
    fid = c.post("/api/v1/uploads", files={"file": ("in.png", png(), "image/png")}).json()["fileId"]
    done = run_to_end(c, wid, {"image": fid})
    url = done["outputs"]["thumb"]["url"]
    assert httpx.get(url).status_code == 200
    assert c.delete(f"/api/v1/workflows/executions/{done['executionId']}").status_code == 204
    assert c.get(f"/api/v1/workflows/executions/{done['executionId']}/poll").status_code == 404
    assert httpx.get(url).status_code == 404


def test_upload_limits_and_types(make_server: Any) -> None:
    server = make_server(max_upload_bytes=2048)
    _a, key = server.account()
    with server.client(key) as c:
        r = c.post("/api/v1/uploads", files={"file": ("big.bin", b"x" * 10_000, "image/png")})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        assert c.post("/api/v1/uploads", files={"file": ("a.exe", b"MZ", "application/x-msdownload")}).status_code == 422
        assert c.post("/api/v1/uploads", data={"nofile": "1"}).status_code == 422


def test_cpu_heavy_nodes_run_in_a_process_pool(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, {"nodes": [{"id": "p", "type": "test.pid"},
                                {"id": "o", "type": "output.json", "inputs": {"value": {"from": "p", "output": "cpu"}},
                                 "params": {"name": "cpu"}},
                                {"id": "w", "type": "output.json", "inputs": {"value": {"from": "p", "output": "worker"}},
                                 "params": {"name": "worker"}}]})
    out = run_to_end(c, wid)["outputs"]
    assert out["cpu"] != out["worker"]


def test_api_stays_responsive_while_nodes_work(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    big = {"nodes": [
        {"id": "img", "type": "input.image", "params": {"name": "image"}},
        *[{"id": f"r{i}", "type": "image.resize", "inputs": {"image": {"from": "img", "output": "image"}},
           "params": {"width": 3000, "height": 3000, "mode": "stretch"}} for i in range(4)],
    ]}
    wid = publish(c, big)
    fid = c.post("/api/v1/uploads", files={"file": ("in.png", png(400, 400), "image/png")}).json()["fileId"]
    eid = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"image": fid}}).json()["executionId"]
    answered = 0
    while c.get(f"/api/v1/workflows/executions/{eid}/poll").json()["status"] not in ("COMPLETED", "FAILED"):
        assert c.get("/healthz", timeout=5).status_code == 200
        answered += 1
    assert answered >= 1


@pytest.mark.parametrize("version", ["draft", 1])
def test_version_field_in_poll(api: tuple[httpx.Client, str], version: Any) -> None:
    c, _ = api
    wid = publish(c, text_graph())
    assert run_to_end(c, wid, version=version)["version"] == version


def test_a_dead_pool_process_fails_one_node_not_the_server(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    crash = publish(c, {"nodes": [{"id": "boom", "type": "test.crash_pool"}]})
    failed = run_to_end(c, crash)
    assert failed["status"] == "FAILED" and failed["error"]["nodeId"] == "boom"
    assert "BrokenProcessPool" in failed["error"]["message"]
    pid = publish(c, {"nodes": [{"id": "p", "type": "test.pid"},
                                {"id": "o", "type": "output.json", "inputs": {"value": {"from": "p", "output": "cpu"}},
                                 "params": {"name": "cpu"}}]})
    assert run_to_end(c, pid)["status"] == "COMPLETED"  # the pool was replaced


def test_router_branch_without_a_value_is_skipped_and_free(api: tuple[httpx.Client, str], tmp_path: Any) -> None:
    c, _ = api
    counter = tmp_path / "runs.txt"
    wid = publish(c, {"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}},
        {"id": "which", "type": "input.integer", "params": {"name": "route", "default": 1}},
        {"id": "r", "type": "logic.router", "inputs": {"value": {"from": "p", "output": "text"},
                                                       "route": {"from": "which", "output": "value"}}},
        {"id": "a", "type": "test.count", "params": {"path": str(counter)},
         "inputs": {"value": {"from": "r", "output": "out0"}}},
        {"id": "b", "type": "test.count", "params": {"path": str(counter)},
         "inputs": {"value": {"from": "r", "output": "out1"}}},
        {"id": "after_a", "type": "text.case", "inputs": {"text": {"from": "a", "output": "value"}}},
        {"id": "pick", "type": "logic.coalesce", "inputs": {"a": {"from": "a", "output": "value"},
                                                            "b": {"from": "b", "output": "value"}}},
        {"id": "o", "type": "output.json", "params": {"name": "v"}, "inputs": {"value": {"from": "pick", "output": "value"}}},
    ]})
    done = run_to_end(c, wid, {"p": "hello", "route": 1})
    assert done["status"] == "COMPLETED", done
    assert done["outputs"] == {"v": "hello"}
    assert len(counter.read_text().split()) == 1  # only branch b ran
    assert done["creditsUsed"] == 1.0 and done["nodes"]["a"]["credits"] == 0.0 and done["nodes"]["b"]["credits"] == 1.0
    events = read_sse(c, f"/api/v1/workflows/executions/{done['executionId']}/events")
    skipped = {e["data"]["nodeId"] for e in events if e["event"] == "node.completed" and e["data"].get("skipped")}
    assert skipped == {"a", "after_a"}  # skipping flows downstream
    assert not [e for e in events if e["event"] == "node.started" and e["data"]["nodeId"] in skipped]
