"""Workflows: CRUD, search, pagination, validate, publish and immutable versions."""

from __future__ import annotations

import json

import httpx
from tests.support.server import LiveServer, run_to_end, text_graph


def test_create_get_update_delete(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    r = c.post("/api/v1/workflows", json={"name": "Greeter", "description": "says hi", "graph": text_graph()})
    assert r.status_code == 201
    wf = r.json()
    assert wf["id"].startswith("wf_") and wf["webhookId"].startswith("wh_") and wf["publishedVersion"] is None
    assert wf["inputs"] == [{"name": "prompt", "type": "text", "required": False, "default": "world",
                             "constraints": {"multiline": True}, "nodeId": "prompt"}]
    assert wf["outputs"] == [{"name": "greeting", "type": "text", "nodeId": "out"}]
    assert wf["createdAt"].endswith("Z")
    got = c.get(f"/api/v1/workflows/{wf['id']}").json()
    assert got["graph"] == text_graph()
    upd = c.put(f"/api/v1/workflows/{wf['id']}", json={"name": "Greeter 2", "graph": text_graph("Yo {{ text }}")})
    assert upd.status_code == 200 and upd.json()["name"] == "Greeter 2"
    assert c.delete(f"/api/v1/workflows/{wf['id']}").status_code == 204
    assert c.get(f"/api/v1/workflows/{wf['id']}").status_code == 404


def test_invalid_graph_is_422_with_paths(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    r = c.post("/api/v1/workflows", json={"name": "bad", "graph": {"nodes": [
        {"id": "a", "type": "image.resize", "inputs": {"image": {"from": "zzz", "output": "image"}}}]}})
    assert r.status_code == 422
    assert r.json()["error"]["details"] == [{"path": "nodes[0].inputs.image", "message": "link from unknown node 'zzz'"}]
    wid = c.post("/api/v1/workflows", json={"name": "ok", "graph": text_graph()}).json()["id"]
    r = c.put(f"/api/v1/workflows/{wid}", json={"graph": {"nodes": [{"id": "x", "type": "nope"}]}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "nodes[0].type"


def test_validate_endpoint_does_not_save(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    r = c.post("/api/v1/workflows/validate", json={"graph": text_graph()})
    assert r.json() == {"valid": True, "errors": []}
    r = c.post("/api/v1/workflows/validate", json={"graph": {"nodes": [
        {"id": "a", "type": "text.template", "inputs": {"text": {"from": "b", "output": "text"}}},
        {"id": "b", "type": "text.template", "inputs": {"text": {"from": "a", "output": "text"}}}]}})
    body = r.json()
    assert r.status_code == 200 and body["valid"] is False
    assert {e["path"] for e in body["errors"]} == {"nodes[0].inputs.text", "nodes[1].inputs.text"}
    assert c.get("/api/v1/workflows").json()["data"] == []


def test_adversarial_graphs_answer_4xx(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    huge = {"nodes": [{"id": f"n{i}", "type": "input.text", "params": {"name": f"n{i}"}} for i in range(10_000)]}
    r = c.post("/api/v1/workflows", json={"name": "huge", "graph": huge}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "graph.nodes"
    chain = [{"id": "n0", "type": "input.text", "params": {"name": "p"}}]
    chain += [{"id": f"n{i}", "type": "text.template", "inputs": {"text": {"from": f"n{i - 1}", "output": "text"}}}
              for i in range(1, 500)]
    assert c.post("/api/v1/workflows/validate", json={"graph": {"nodes": chain}}).json()["valid"] is True
    cyc = [{"id": f"n{i}", "type": "text.template", "inputs": {"text": {"from": f"n{(i + 1) % 400}", "output": "text"}}}
           for i in range(400)]
    r = c.post("/api/v1/workflows", json={"name": "cycle", "graph": {"nodes": cyc}}, timeout=30)
    assert r.status_code == 422 and "cycle" in r.json()["error"]["details"][0]["message"]
    nested: object = "x"
    for _ in range(5000):
        nested = [nested]
    r = c.post("/api/v1/workflows/validate", content=b'{"graph": ' + b"[" * 5000 + b"]" * 5000 + b"}",
               headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    # nested deeply but within what the JSON parser takes: refused before anything stores or copies it
    deep_param = {"nodes": [{"id": "j", "type": "input.json",
                             "params": {"name": "n", "default": json.loads("[" * 900 + "]" * 900)}}]}
    r = c.post("/api/v1/workflows", json={"name": "deep", "graph": deep_param}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "nodes[0]"
    # an Idempotency-Key makes the server fingerprint the body first: that must not turn it into a 500
    r = c.post("/api/v1/workflows", content=b'{"a": ' * 2000, timeout=30,
               headers={"Content-Type": "application/json", "Idempotency-Key": "deep-1"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


def test_search_and_cursor_pagination(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    for name in ["Alpha portrait", "Beta upscale", "alpha banner", "Gamma", "50% off_sale"]:
        assert c.post("/api/v1/workflows", json={"name": name, "graph": text_graph()}).status_code == 201
    found = c.get("/api/v1/workflows", params={"q": "ALPHA"}).json()["data"]
    assert sorted(w["name"] for w in found) == ["Alpha portrait", "alpha banner"]
    assert [w["name"] for w in c.get("/api/v1/workflows", params={"q": "%"}).json()["data"]] == ["50% off_sale"]
    seen: list[str] = []
    cursor = None
    while True:
        page = c.get("/api/v1/workflows", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["data"]) <= 2
        seen += [w["name"] for w in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len(set(seen)) == 5
    assert seen[0] == "50% off_sale"  # newest first
    # not a cursor, or base64 JSON of the wrong shape: a clear 422, never a 500
    for bad in ("garbage!", "WzFd", "WzEsIDJd", "eyJhIjogMX0", "WyJub3QgYSBkYXRlIiwgIngiXQ"):
        for path in ("/api/v1/workflows", "/api/v1/workflows/executions"):
            r = c.get(path, params={"cursor": bad})
            assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "cursor", (path, bad, r.text)


def test_publish_makes_immutable_versions(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = c.post("/api/v1/workflows", json={"name": "v", "graph": text_graph("one {{ text }}")}).json()["id"]
    r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "workflow_not_published"
    p1 = c.post(f"/api/v1/workflows/{wid}/publish")
    assert p1.status_code == 201 and p1.json()["version"] == 1 and p1.json()["workflowId"] == wid
    c.put(f"/api/v1/workflows/{wid}", json={"graph": text_graph("two {{ text }}")})
    assert run_to_end(c, wid)["outputs"] == {"greeting": "one world"}  # still version 1
    assert run_to_end(c, wid, version="draft")["outputs"] == {"greeting": "two world"}
    assert c.post(f"/api/v1/workflows/{wid}/publish").json()["version"] == 2
    assert run_to_end(c, wid)["outputs"] == {"greeting": "two world"}
    assert run_to_end(c, wid, version=1)["outputs"] == {"greeting": "one world"}
    versions = c.get(f"/api/v1/workflows/{wid}/versions").json()["data"]
    assert [v["version"] for v in versions] == [2, 1]
    v1 = c.get(f"/api/v1/workflows/{wid}/versions/1").json()
    assert v1["graph"]["nodes"][1]["params"]["template"] == "one {{ text }}"
    assert v1["nodeVersions"]["tpl"] == 1
    assert c.get(f"/api/v1/workflows/{wid}/versions/9").status_code == 404
    assert c.post(f"/api/v1/workflows/{wid}/execute", json={"version": 9}).status_code == 404
    # numbers no version can have are malformed (422), not unknown, and never reach the database
    for bad in ("0", "999999999999999999999"):
        r = c.get(f"/api/v1/workflows/{wid}/versions/{bad}")
        assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "version"
    r = c.post(f"/api/v1/workflows/{wid}/execute", json={"version": 999999999999999999999})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"].startswith("version")
    assert c.get(f"/api/v1/workflows/{wid}").json()["publishedVersion"] == 2
    # published graphs are cached for execute; a deleted workflow still cannot run from that cache
    assert c.delete(f"/api/v1/workflows/{wid}").status_code == 204
    assert c.post(f"/api/v1/workflows/{wid}/execute", json={"version": 1}).status_code == 404


def test_nodes_catalogue(server: LiveServer) -> None:
    _a, key = server.account()
    with server.client(key) as c:
        data = c.get("/api/v1/nodes").json()["data"]
        by_type = {n["type"]: n for n in data}
        for t in ["input.text", "input.number", "input.integer", "input.boolean", "input.image", "output.text",
                  "output.image", "output.json", "text.template", "image.resize", "util.delay"]:
            assert t in by_type
        resize = by_type["image.resize"]
        assert resize["category"] == "image" and resize["resources"] == "cpu" and resize["available"] is True
        width = next(p for p in resize["params"] if p["name"] == "width")
        assert width["constraints"] == {"min": 1, "max": 8192} and width["type"] == "integer"
        mode = next(p for p in resize["params"] if p["name"] == "mode")
        assert mode["constraints"]["enum"] == ["fit", "fill", "stretch"]
        one = c.get("/api/v1/nodes/text.template").json()
        assert one["inputs"][1] == {"name": "values", "type": "json", "required": False, "default": None,
                                    "description": "", "constraints": {}}
        assert c.get("/api/v1/nodes/nope.nope").status_code == 404


def test_openapi_and_docs(server: LiveServer) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/api/v1/workflows/{workflow_id}/execute" in spec["paths"]
    assert httpx.get(server.url + "/docs").status_code == 200
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["status"] == "ok" and set(ready["checks"]) == {"database", "queue", "storage"}


def test_dashboard_is_served_with_client_route_fallback(make_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>nodeloom dashboard</html>")
    (dist / "assets" / "app.js").write_text("console.log(1)")
    server = make_server(web_dist=dist)
    assert "nodeloom dashboard" in httpx.get(server.url + "/").text
    assert httpx.get(server.url + "/assets/app.js").text == "console.log(1)"
    assert "nodeloom dashboard" in httpx.get(server.url + "/workflows/wf_123").text  # a client-side route
    r = httpx.get(server.url + "/api/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"  # API paths keep their errors
    assert httpx.get(server.url + "/../../etc/passwd").status_code in (200, 404)  # never outside dist
    assert "root:" not in httpx.get(server.url + "/assets/../../../../etc/passwd").text
