"""The published OpenAPI document is the contract: the live answers of the main flows validate against it.

Each request below goes to a real server; its answer's status must be one the operation documents, its body
must validate (JSON Schema 2020-12, `jsonschema`) against the schema `/openapi.json` publishes for that status,
and the headers it documents as required (`X-Request-Id`, `X-RateLimit-*`, `Retry-After` on 429) must be there
and typed. Errors are provoked on purpose (401, 403, 404, 409, 422, 402, 413, 429, 400) so that every error
answer is checked against the envelope the document names. A second test checks the document itself: no
empty success schemas, no FastAPI `HTTPValidationError`, our envelope on every error, the bearer scheme and a
scope on every operation that needs a key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from tests.support.server import LiveServer, delay_graph, publish, text_graph, wait_status

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2a1d8d50000000049454e44ae426082")


def priced_graph(path: str) -> dict[str, Any]:
    """One node that costs a credit (tests.support.nodes `test.count`)."""
    return {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "x"}},
        {"id": "count", "type": "test.count", "inputs": {"value": {"from": "prompt", "output": "text"}},
         "params": {"path": path}},
        {"id": "out", "type": "output.json", "inputs": {"value": {"from": "count", "output": "value"}},
         "params": {"name": "value"}},
    ]}


class Contract:
    """The document a server publishes, and a check of one live answer against it."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.checked: set[tuple[str, str, str]] = set()  # (method, path template, status) seen valid

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        # the component refs (#/components/...) resolve against a root that carries the document's components
        return Draft202012Validator({**schema, "components": self.doc["components"]})

    def check(self, response: httpx.Response, method: str, template: str) -> httpx.Response:
        label = f"{method.upper()} {template} → {response.status_code}"
        operation = self.doc["paths"][template][method.lower()]
        status = str(response.status_code)
        documented = operation["responses"]
        assert status in documented, f"{label}: status not documented ({sorted(documented)}): {response.text[:300]}"
        spec = self.resolve(documented[status])
        for name, header in spec.get("headers", {}).items():
            header = self.resolve(header)
            value = response.headers.get(name)
            if header.get("required"):
                assert value is not None, f"{label}: header {name} is missing"
            if value is not None and header.get("schema", {}).get("type") == "integer":
                assert value.lstrip("-").isdigit(), f"{label}: header {name}={value!r} is not an integer"
                errors = list(self.validator(header["schema"]).iter_errors(int(value)))
                assert not errors, f"{label}: header {name}={value!r}: {errors[0].message}"
        content = spec.get("content")
        if not content:
            assert not response.content, f"{label}: documented without a body, answered {response.content[:200]!r}"
        else:
            media = response.headers.get("content-type", "").split(";")[0].strip()
            assert media in content or any(m.endswith("/*") and media.startswith(m[:-1]) for m in content), \
                f"{label}: content type {media!r} not documented ({sorted(content)})"
            if media == "application/json":
                schema = content[media]["schema"]
                assert schema, f"{label}: the document has an empty schema"
                body = response.json()
                errors = sorted(self.validator(schema).iter_errors(body), key=lambda e: list(e.path))
                assert not errors, (f"{label}: the body does not match the published schema: "
                                    f"{errors[0].message} at {list(errors[0].path)}\n{json.dumps(body)[:800]}")
        self.checked.add((method.lower(), template, status))
        return response

    def schema(self, name: str) -> Draft202012Validator:
        return self.validator({"$ref": f"#/components/schemas/{name}"})


class Caller:
    """Requests by path template (`/api/v1/workflows/{workflow_id}`), each answer checked against the contract."""

    def __init__(self, client: httpx.Client, contract: Contract):
        self.client = client
        self.contract = contract

    def __call__(self, method: str, template: str, *, expect: int | None = None, params: dict[str, Any] | None = None,
                 **kwargs: Any) -> httpx.Response:
        path = template.format(**(params or {}))
        response = self.client.request(method.upper(), path, **kwargs)
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text[:400]}"
        return self.contract.check(response, method, template)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


@pytest.fixture
def contract(server: LiveServer) -> Contract:
    r = httpx.get(server.url + "/openapi.json", timeout=30)
    assert r.status_code == 200
    return Contract(r.json())


@pytest.mark.timeout(120)
def test_the_main_flows_answer_as_the_published_document_says(server: LiveServer, contract: Contract,
                                                              tmp_path: Any) -> None:
    account_id, key = server.account(credits=1000)
    with server.client(key) as client:
        call = Caller(client, contract)
        W, E = "/api/v1/workflows", "/api/v1/workflows/executions"

        # workflows: create, list, get, edit, validate, publish, versions, estimate
        created = call("post", W, expect=201, json={"name": "Greeter", "description": "hi", "graph": text_graph()})
        wid = created.json()["id"]
        call("get", W, expect=200)
        call("get", W + "/{workflow_id}", expect=200, params={"workflow_id": wid})
        call("put", W + "/{workflow_id}", expect=200, params={"workflow_id": wid}, json={"name": "Greeter 2"})
        assert call("post", W + "/validate", expect=200, json={"graph": text_graph()}).json()["valid"] is True
        bad = call("post", W + "/validate", expect=200, json={"graph": {"nodes": [{"id": "x", "type": "nope"}]}})
        assert bad.json()["valid"] is False
        call("post", W + "/{workflow_id}/execute", expect=409, params={"workflow_id": wid}, json={"inputs": {}})
        call("post", W + "/{workflow_id}/publish", expect=201, params={"workflow_id": wid})
        call("get", W + "/{workflow_id}/versions", expect=200, params={"workflow_id": wid})
        call("get", W + "/{workflow_id}/versions/{version}", expect=200, params={"workflow_id": wid, "version": 1})
        call("get", W + "/{workflow_id}/versions/{version}", expect=404, params={"workflow_id": wid, "version": 9})
        call("post", W + "/{workflow_id}/estimate", expect=200, params={"workflow_id": wid},
             json={"inputs": {"prompt": "x"}})

        # execute (202), poll, list, get, events; Prefer: wait (200); cancel (202, then 409); delete
        accepted = call("post", W + "/{workflow_id}/execute", expect=202, params={"workflow_id": wid},
                        json={"inputs": {"prompt": "conformance"}})
        eid = accepted.json()["executionId"]
        call("get", E + "/{execution_id}/poll", expect=200, params={"execution_id": eid})
        wait_status(client, eid, {"COMPLETED"})
        done = call("get", E + "/{execution_id}/poll", expect=200, params={"execution_id": eid}).json()
        assert done["outputs"] == {"greeting": "Hello conformance!"}
        call("get", E + "/{execution_id}", expect=200, params={"execution_id": eid})
        call("get", E, expect=200)
        waited = call("post", W + "/{workflow_id}/execute", expect=200, params={"workflow_id": wid},
                      json={"inputs": {"prompt": "wait"}}, headers={"Prefer": "wait=20"})
        assert waited.json()["status"] == "COMPLETED"

        stream = call("get", E + "/{execution_id}/events", expect=200, params={"execution_id": eid})
        events = [block for block in stream.text.split("\n\n") if block.strip() and not block.startswith(":")]
        event_schema = contract.schema("ExecutionEvent")
        for block in events:
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            event = {"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])}
            problems = list(event_schema.iter_errors(event))
            assert not problems, f"event {event} does not match ExecutionEvent: {problems[0].message}"
        assert json.loads(events[-1].split("data: ", 1)[1])  # and it ended with the terminal event
        assert "event: execution.completed" in events[-1]

        slow = publish(client, delay_graph(5.0), name="slow")
        running = call("post", W + "/{workflow_id}/execute", expect=202, params={"workflow_id": slow},
                       json={"inputs": {}}).json()["executionId"]
        call("delete", E + "/{execution_id}", expect=409, params={"execution_id": running})
        call("post", E + "/{execution_id}/cancel", expect=202, params={"execution_id": running})
        wait_status(client, running, {"CANCELLED"})
        call("post", E + "/{execution_id}/cancel", expect=409, params={"execution_id": running})
        call("delete", E + "/{execution_id}", expect=204, params={"execution_id": running})
        call("get", E + "/{execution_id}/poll", expect=404, params={"execution_id": running})

        # keys, account, usage, nodes, vendor keys
        made = call("post", "/api/v1/keys", expect=201, json={"name": "reader", "scopes": ["read"]}).json()
        call("post", "/api/v1/keys", expect=422, json={"name": "old", "scopes": ["read"],
                                                       "expiresAt": "2001-01-01T00:00:00Z"})
        call("get", "/api/v1/keys", expect=200)
        call("get", "/api/v1/account", expect=200)
        call("post", "/api/v1/account/webhook-secret/rotate", expect=200)
        call("get", "/api/v1/usage", expect=200)
        nodes = call("get", "/api/v1/nodes", expect=200).json()["data"]
        call("get", "/api/v1/nodes/{node_type}", expect=200, params={"node_type": nodes[0]["type"]})
        call("get", "/api/v1/nodes/{node_type}", expect=404, params={"node_type": "no.such.type"})
        call("get", "/api/v1/account/providers", expect=200)
        call("put", "/api/v1/account/providers/{provider}", expect=404, params={"provider": "nope"},
             json={"apiKey": "abc"})
        call("delete", "/api/v1/account/providers/{provider}", expect=404, params={"provider": "fal"})

        # uploads and signed downloads
        uploaded = call("post", "/api/v1/uploads", expect=201, files={"file": ("dot.png", PNG_1x1, "image/png")}).json()
        call("post", "/api/v1/uploads", expect=422, data={"other": "x"}, files={"nofile": ("a.txt", b"a")})
        link = httpx.URL(uploaded["url"])  # signed: needs no header
        with httpx.Client(base_url=server.url, timeout=30) as anonymous:
            signed = anonymous.get(link.path, params=dict(link.params))
            assert contract.check(signed, "get", "/api/v1/files/{file_id}").status_code == 200
            assert signed.content == PNG_1x1
            unsigned = anonymous.get(f"/api/v1/files/{uploaded['fileId']}", params={"exp": "1", "sig": "x"})
            assert contract.check(unsigned, "get", "/api/v1/files/{file_id}").status_code == 403

        # webhooks: settings, a trigger, deliveries
        settings = call("get", W + "/{workflow_id}/webhook", expect=200, params={"workflow_id": wid}).json()
        call("patch", W + "/{workflow_id}/webhook", expect=200, params={"workflow_id": wid},
             json={"callbackEvents": ["completed"]})
        call("patch", W + "/{workflow_id}/webhook", expect=422, params={"workflow_id": wid},
             json={"callbackUrl": "http://127.0.0.1/hook"})
        with httpx.Client(base_url=server.url, timeout=30) as anonymous:
            anon = Caller(anonymous, contract)
            anon("post", "/api/v1/webhooks/{webhook_id}", expect=202, params={"webhook_id": settings["webhookId"]},
                 json={"prompt": "trigger"})
            anon("post", "/api/v1/workflow/{webhook_id}/trigger", expect=404, params={"webhook_id": "wh_nope"},
                 json={})
            anon("get", "/api/v1/auth/config", expect=200)
            anon("get", "/api/v1/auth/me", expect=401)
            anon("get", "/healthz", expect=200)
            anon("get", "/readyz", expect=200)
            # 401: no key, another scheme, a malformed or unknown key
            anon("get", W, expect=401)
            anon("get", W, expect=401, headers={"Authorization": "Basic abc"})
            anon("get", W, expect=401, headers={"Authorization": "Bearer sk-not-a-real-key"})
        call("post", W + "/{workflow_id}/webhook/rotate", expect=200, params={"workflow_id": wid})
        call("get", "/api/v1/webhook-deliveries", expect=200)
        call("get", "/api/v1/webhook-deliveries/{delivery_id}", expect=404, params={"delivery_id": "dlv_nope"})
        call("post", "/api/v1/webhook-deliveries/{delivery_id}/redeliver", expect=404,
             params={"delivery_id": "dlv_nope"})

        # 403 (scope), 404 (unknown / another account's), 422 (inputs, body), 400 (JSON), idempotency
        with server.client(made["key"]) as reader:
            limited = Caller(reader, contract)
            r = limited("post", W + "/{workflow_id}/execute", expect=403, params={"workflow_id": wid},
                        json={"inputs": {}})
            assert "execute" in r.json()["error"]["message"]
            limited("get", "/api/v1/usage", expect=403)
        _other, other_key = server.account()
        with server.client(other_key) as other:
            Caller(other, contract)("get", W + "/{workflow_id}", expect=404, params={"workflow_id": wid})
        call("get", W + "/{workflow_id}", expect=404, params={"workflow_id": "wf_nope"})
        r = call("post", W + "/{workflow_id}/execute", expect=422, params={"workflow_id": wid},
                 json={"inputs": {"nope": 1}})
        assert error_code(r) == "invalid_inputs" and r.json()["error"]["details"]
        assert error_code(call("post", W, expect=422, json={"name": ""})) == "validation_error"
        assert error_code(call("post", W, expect=422, json={"name": "x", "graph": {"nodes": [
            {"id": "a", "type": "no.such"}]}})) == "invalid_graph"
        assert error_code(call("post", W, expect=400, content=b"{not json",
                               headers={"Content-Type": "application/json"})) == "invalid_json"
        r = client.get(E, params={"limit": 0})
        contract.check(r, "get", E)
        assert r.status_code == 422
        once = {"Idempotency-Key": "conformance-1"}
        first = call("post", W + "/{workflow_id}/execute", expect=202, params={"workflow_id": wid},
                     json={"inputs": {"prompt": "once"}}, headers=once)
        replay = call("post", W + "/{workflow_id}/execute", expect=202, params={"workflow_id": wid},
                      json={"inputs": {"prompt": "once"}}, headers=once)
        assert replay.content == first.content and replay.headers.get("idempotent-replayed") == "true"
        reused = call("post", W + "/{workflow_id}/execute", expect=422, params={"workflow_id": wid},
                      json={"inputs": {"prompt": "twice"}}, headers=once)
        assert error_code(reused) == "idempotency_key_reused"
        call("delete", "/api/v1/keys/{key_id}", expect=204, params={"key_id": made["id"]})
        call("delete", "/api/v1/keys/{key_id}", expect=404, params={"key_id": made["id"]})
        call("delete", W + "/{workflow_id}", expect=204, params={"workflow_id": slow})

    # 402: a priced run on an account without the credits
    _poor, poor_key = server.account(credits=0.5)
    with server.client(poor_key) as poor:
        pcall = Caller(poor, contract)
        pid = publish(poor, priced_graph(str(tmp_path / "count.txt")), name="priced")
        quote = pcall("post", W + "/{workflow_id}/estimate", expect=200, params={"workflow_id": pid},
                      json={"inputs": {}}).json()
        assert quote["sufficient"] is False
        refused = pcall("post", W + "/{workflow_id}/execute", expect=402, params={"workflow_id": pid},
                        json={"inputs": {}}).json()["error"]
        assert refused["code"] == "insufficient_credits" and refused["breakdown"][0]["nodeId"] == "count"

    assert account_id and len(contract.checked) >= 60, len(contract.checked)


@pytest.mark.timeout(60)
def test_limits_answer_as_the_published_document_says(make_server: Callable[..., LiveServer]) -> None:
    """429 (request rate and execution rate, with Retry-After) and 413, on a server that enforces limits."""
    srv = make_server(rate_limits_enabled=True, max_body_bytes=4096,
                      plans={"pro": {"requests_per_minute": 8, "executions_per_minute": 1}})
    contract = Contract(httpx.get(srv.url + "/openapi.json", timeout=30).json())
    _account, key = srv.account()
    W = "/api/v1/workflows"
    with srv.client(key) as client:
        call = Caller(client, contract)
        wid = call("post", W, expect=201, json={"name": "g", "graph": text_graph()}).json()["id"]
        call("post", W + "/{workflow_id}/publish", expect=201, params={"workflow_id": wid})
        too_big = call("post", W, expect=413, json={"name": "big", "graph": {"pad": "x" * 8000}})
        assert error_code(too_big) == "payload_too_large"
        call("post", W + "/{workflow_id}/execute", expect=202, params={"workflow_id": wid}, json={"inputs": {}})
        r = call("post", W + "/{workflow_id}/execute", expect=429, params={"workflow_id": wid}, json={"inputs": {}})
        assert error_code(r) == "execution_rate_limited" and int(r.headers["Retry-After"]) >= 0
        deadline = time.time() + 20
        while True:
            r = call("get", W)
            if r.status_code == 429:
                break
            assert time.time() < deadline, "the request rate was never enforced"
        assert error_code(r) == "rate_limited" and r.json()["error"]["retryAfter"] >= 0
        assert r.headers["X-RateLimit-Remaining"] == "0"


def test_the_document_has_real_schemas_our_envelope_and_the_bearer_scheme(contract: Contract) -> None:
    doc = contract.doc
    text = json.dumps(doc)
    assert "HTTPValidationError" not in text and "#/components/schemas/ValidationError" not in text
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {**doc["components"]["securitySchemes"]["bearerAuth"],
                                                                  "type": "http", "scheme": "bearer"}
    scopes = {"execute", "read", "usage", "manage"}
    problems = []
    operations = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            operations += 1
            label = f"{method.upper()} {path}"
            for status, response in op["responses"].items():
                response = contract.resolve(response)
                for media, content in response.get("content", {}).items():
                    schema = content.get("schema")
                    if status.startswith("2") and media == "application/json" and not schema:
                        problems.append(f"{label} {status}: empty schema")
                    if status[0] in "45" and path != "/readyz" and schema != {"$ref": "#/components/schemas/ErrorEnvelope"}:
                        problems.append(f"{label} {status}: not the ErrorEnvelope: {schema}")
                if status[0] in "45" and "`" not in response.get("description", ""):
                    problems.append(f"{label} {status}: no error codes listed")
                headers = response.get("headers", {})
                if not {"X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(headers):
                    problems.append(f"{label} {status}: rate-limit/request-id headers not documented")
                if status == "429" and "Retry-After" not in headers:
                    problems.append(f"{label} 429: no Retry-After")
            if not any(s.startswith("2") or s == "307" for s in op["responses"]):
                problems.append(f"{label}: no success answer")
            if "security" not in op:
                problems.append(f"{label}: no security requirement (use [] for anonymous)")
            for requirement in op.get("security", []):
                for scheme, needed in requirement.items():
                    if not (scheme in doc["components"]["securitySchemes"] and set(needed) <= scopes):
                        problems.append(f"{label}: bad security requirement {requirement}")
                    if needed and f"`{needed[0]}`" not in op.get("description", ""):
                        problems.append(f"{label}: scope not named in the description")
            if method == "post" and path.startswith("/api/") and not (
                    path == "/api/v1/keys" or path.endswith("/rotate") or path.startswith("/api/v1/auth/")):
                if not any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])):
                    problems.append(f"{label}: Idempotency-Key not documented")
    assert operations >= 40
    assert problems == [], "\n".join(problems)
    execute = doc["paths"]["/api/v1/workflows/{workflow_id}/execute"]["post"]
    prefer = next(p for p in execute["parameters"] if p["name"] == "Prefer")
    assert prefer["in"] == "header" and "pattern" in prefer["schema"]
    assert execute["security"][0] == {"bearerAuth": ["execute"]}
    assert {"200", "202", "402", "409", "422", "429"} <= set(execute["responses"])
    assert "examples" in contract.resolve(execute["requestBody"]["content"]["application/json"]["schema"])
