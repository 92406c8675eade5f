"""@nodeloom/client (clients/typescript): its generated types are current, its webhook test vector is the server's
own signature, and the BUILT package (`npm ci` when needed, then `npm run build`) works with Node against a live
server: a run whose progress callbacks see every node, a cut event stream resumed with Last-Event-ID, typed errors
from real answers (404, 422, 401, 403, 402), an upload and download round trip, and a real signed callback
verified by `verifyWebhook` in a Node receiver.

The client's own unit tests (SSE parser, error mapping, retries, webhook verification) run with `npm test` in
scripts/test-web.sh."""

from __future__ import annotations

import base64
import difflib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tests.client.proxy import CuttingProxy
from tests.platform.conftest import priced_graph
from tests.support.server import IN_CI, ROOT, LiveServer

CLIENT = ROOT / "clients" / "typescript"
REGENERATE = "python scripts/export-openapi.py && (cd clients/typescript && npm run gen)"
PLATFORM_PACKS = ["tests.support.nodes", "tests.platform.nodes"]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def _npm(*args: str, timeout: float = 600) -> None:
    result = subprocess.run(["npm", *args], cwd=CLIENT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"npm {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed() -> Path:
    """clients/typescript with its node_modules: `npm ci` from the lock file when they are missing or older."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        _unavailable("node and npm are needed for the TypeScript client")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 18:
        _unavailable(f"the TypeScript client needs Node 18 or later, not {version}")
    marker = CLIENT / "node_modules" / ".package-lock.json"
    if not marker.is_file() or (CLIENT / "package-lock.json").stat().st_mtime > marker.stat().st_mtime:
        _npm("ci", "--no-audit", "--no-fund", "--loglevel=error")
    return CLIENT


@pytest.fixture(scope="module")
def built(installed: Path) -> Path:
    """The package as a user gets it: dist/index.js from `npm run build`."""
    _npm("run", "build", "--silent", timeout=300)
    entry = installed / "dist" / "index.js"
    assert entry.is_file()
    return entry


# generated files ---------------------------------------------------------------------------------------------
def test_openapi_json_and_the_generated_types_are_current(installed: Path, tmp_path: Path) -> None:
    fresh_doc = tmp_path / "openapi.json"
    export = subprocess.run([sys.executable, str(ROOT / "scripts" / "export-openapi.py"), "-o", str(fresh_doc)],
                            capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stderr[-3000:]
    fresh_types = tmp_path / "openapi.ts"
    gen = subprocess.run([str(installed / "node_modules" / ".bin" / "openapi-typescript"), str(fresh_doc),
                          "--output", str(fresh_types)], cwd=installed, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stdout[-2000:] + gen.stderr[-2000:]
    for checked_in, fresh in ((installed / "openapi.json", fresh_doc),
                              (installed / "src" / "generated" / "openapi.ts", fresh_types)):
        current = checked_in.read_text(encoding="utf-8") if checked_in.is_file() else ""
        wanted = fresh.read_text(encoding="utf-8")
        if current != wanted:
            diff = "".join(list(difflib.unified_diff(current.splitlines(True), wanted.splitlines(True),
                                                     str(checked_in.relative_to(ROOT)), "regenerated"))[:60])
            pytest.fail(f"{checked_in.relative_to(ROOT)} is stale: run `{REGENERATE}` and commit the result\n{diff}")


def test_the_webhook_test_vector_is_the_servers_own_signature() -> None:
    from nodeloom.webhooks import sign_headers

    vector = json.loads((CLIENT / "test" / "fixtures" / "webhook-vector.json").read_text(encoding="utf-8"))
    headers = vector["headers"]
    signed = sign_headers([vector["otherSecret"], vector["secret"]], msg_id=headers["webhook-id"],
                          timestamp=int(headers["webhook-timestamp"]), body=vector["body"].encode())
    assert signed == headers
    assert base64.b64decode(vector["secret"].removeprefix("whsec_"))  # a real secret, not a placeholder


# the built client against a live server ----------------------------------------------------------------------
SCRIPT = r"""
import http from "node:http";
import { readFile, writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";

const [entry, configPath] = process.argv.slice(2);
const config = JSON.parse(await readFile(configPath, "utf8"));
const nl = await import(pathToFileURL(entry).href);
const { Nodeloom, Media, NotFound, ValidationFailed, Unauthorized, Forbidden, InsufficientCredits, APIError,
        WebhookVerificationError, verifyWebhook } = nl;
const out = { timings: {} };
const started = Date.now();
const mark = (name) => { out.timings[name] = Date.now() - started; };

const client = new Nodeloom({ baseUrl: config.url, apiKey: config.key });

// 1. a run with progress: every node seen starting and completing, typed outputs
const wf = await client.createWorkflow("from node", config.chainGraph);
await client.publish(wf.id);
const progress = [];
const result = await client.run(wf.id, { prompt: "node" }, { onProgress: (p) => progress.push({ event: p.event, nodeId: p.nodeId, fraction: p.fraction, nodes: p.nodes }) });
out.run = { status: result.status, ok: result.ok, outputs: result.outputs, nodes: Object.keys(result.nodes), progress };

mark("run");
// 2. a cut stream, resumed with Last-Event-ID through the proxy; the reference straight from the server
const viaProxy = new Nodeloom({ baseUrl: config.proxyUrl, apiKey: config.key });
const submitted = await viaProxy.execute(wf.id, { prompt: "cut" });
const received = [];
for await (const e of viaProxy.events(submitted.executionId)) received.push([e.id, e.event, e.nodeId]);
const reference = [];
for await (const e of client.events(submitted.executionId)) reference.push([e.id, e.event, e.nodeId]);
out.stream = { received, reference };

mark("stream");
// 3. typed errors from real answers
const caught = async (promise) => {
  try { await promise; return { thrown: false }; } catch (e) {
    return { name: e.constructor.name, isAPIError: e instanceof APIError, status: e.status, code: e.code, message: e.message,
             requestId: e.requestId, details: e.details, required: e.required, balance: e.balance, breakdown: e.breakdown,
             classes: { NotFound: e instanceof NotFound, ValidationFailed: e instanceof ValidationFailed,
                        Unauthorized: e instanceof Unauthorized, Forbidden: e instanceof Forbidden,
                        InsufficientCredits: e instanceof InsufficientCredits } };
  }
};
const priced = await client.createWorkflow("priced", config.pricedGraph);
await client.publish(priced.id);
out.errors = {
  notFound: await caught(client.poll("ex_missing")),
  invalid: await caught(client.execute(wf.id, { nope: 1 })),
  unauthorized: await caught(new Nodeloom({ baseUrl: config.url, apiKey: "sk-not-a-real-key" }).workflows()),
  forbidden: await caught(new Nodeloom({ baseUrl: config.url, apiKey: config.readOnlyKey }).execute(wf.id, {})),
  credits: await caught(client.execute(priced.id, {})),
};

mark("errors");
// 4. upload bytes, run an image workflow on them, download the output
const png = new Uint8Array(await readFile(config.pngPath));
const uploaded = await client.upload(png, { filename: "in.png" });
const imageWf = await client.createWorkflow("image", config.imageGraph);
await client.publish(imageWf.id);
const imageRun = await client.run(imageWf.id, { image: uploaded.fileId });
const image = imageRun.outputs.image;
const bytes = await client.download(image);
await writeFile(config.downloadPath, bytes);
const fromBlob = await client.run(imageWf.id, { image: new Blob([png], { type: "image/png" }) });
await writeFile(config.downloadPath2, await client.download(fromBlob.outputs.image.url));
out.files = { fileId: uploaded.fileId, size: uploaded.size, contentType: uploaded.contentType, isMedia: image instanceof Media,
              width: image.width, height: image.height, downloaded: bytes.length,
              tampered: await caught(client.download(image.url.replace("sig=", "sig=0"))) };

mark("files");
// 5. a real signed callback, received by a Node server and verified with the account's secret
const deliveries = [];
let delivered;
const arrived = new Promise((resolve) => { delivered = resolve; });
const receiver = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    deliveries.push({ body: Buffer.concat(chunks), headers: req.headers });
    res.writeHead(204).end();
    delivered();
  });
});
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
const secret = (await client.account()).webhookSecret;
const hooked = await client.run(wf.id, { prompt: "hook" }, { webhookUrl: hookUrl });
let timer;
await Promise.race([arrived, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("no callback came")), 20000); })]);
clearTimeout(timer);
receiver.close();
const [delivery] = deliveries;
const payload = await verifyWebhook(new Uint8Array(delivery.body), delivery.headers, secret);
const refused = [];
for (const [body, headers, key, now] of [
  [Buffer.from(JSON.stringify({ ...payload, outputs: { greeting: "forged" } })), delivery.headers, secret, undefined],
  [delivery.body, delivery.headers, "whsec_" + "QUJD".repeat(8), undefined],
  [delivery.body, delivery.headers, secret, Number(delivery.headers["webhook-timestamp"]) + 3600],
]) {
  try { await verifyWebhook(new Uint8Array(body), headers, key, { now }); refused.push(false); }
  catch (e) { refused.push(e instanceof WebhookVerificationError); }
}
out.webhook = { executionId: hooked.executionId, type: payload.type, payloadExecutionId: payload.executionId,
                outputs: payload.outputs, webhookId: delivery.headers["webhook-id"], refused };

mark("webhook");
console.log(JSON.stringify(out));
"""


def _graph_chain(seconds: float) -> dict[str, Any]:
    return {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "x"}},
        {"id": "tpl", "type": "text.template", "inputs": {"text": {"from": "prompt", "output": "text"}},
         "params": {"template": "Hello {{ text }}!"}},
        {"id": "wait", "type": "util.delay", "inputs": {"value": {"from": "tpl", "output": "text"}},
         "params": {"seconds": seconds}},
        {"id": "out", "type": "output.text", "inputs": {"text": {"from": "wait", "output": "value"}},
         "params": {"name": "greeting"}},
    ]}


def _graph_image() -> dict[str, Any]:
    return {"nodes": [
        {"id": "img", "type": "input.image", "params": {"name": "image", "required": True}},
        {"id": "out", "type": "output.image", "inputs": {"image": {"from": "img", "output": "image"}},
         "params": {"name": "image"}},
    ]}


@pytest.mark.slow
def test_the_built_client_runs_against_a_live_server(built: Path, make_server: Callable[..., LiveServer],
                                                     tmp_path: Path) -> None:
    server = make_server(node_packs=PLATFORM_PACKS, allow_private_urls=True, webhook_retry_schedule=[0.2],
                         webhook_retry_jitter=0.0, webhook_poll_interval_seconds=0.05)
    account_id, key = server.account(credits=3)
    read_only = server.key(account_id, ["read"])
    pixels = Image.new("RGB", (32, 16))
    pixels.putdata([(x * 8, y * 16, (x * y) % 256) for y in range(16) for x in range(32)])
    source = tmp_path / "in.png"
    pixels.save(source)
    proxy = CuttingProxy(server.port)
    config = {"url": server.url, "proxyUrl": proxy.url, "key": key, "readOnlyKey": read_only,
              "chainGraph": _graph_chain(1.0), "pricedGraph": priced_graph(), "imageGraph": _graph_image(),
              "pngPath": str(source), "downloadPath": str(tmp_path / "out.png"),
              "downloadPath2": str(tmp_path / "out2.png")}
    (tmp_path / "config.json").write_text(json.dumps(config))
    script = tmp_path / "e2e.mjs"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODELOOM_")}
    try:
        run = subprocess.run(["node", str(script), str(built), str(tmp_path / "config.json")], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=240)
    finally:
        proxy.close()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])

    # 1. progress saw every node start, then complete, in order; the outputs came back typed
    r = out["run"]
    assert r["ok"] and r["status"] == "COMPLETED" and r["outputs"] == {"greeting": "Hello node!"}
    assert set(r["nodes"]) == {"prompt", "tpl", "wait", "out"}
    for node in r["nodes"]:
        events = [p["event"] for p in r["progress"] if p["nodeId"] == node and p["event"] != "node.progress"]
        assert events == ["node.started", "node.completed"], (node, events)
    assert r["progress"][0]["event"] == "execution.started" and r["progress"][-1]["event"] == "execution.completed"
    fractions = [p["fraction"] for p in r["progress"]]
    assert fractions == sorted(fractions) and fractions[-1] == 1 and 0 < fractions[len(fractions) // 2] < 1
    assert set(r["progress"][-1]["nodes"]) == set(r["nodes"])

    # 2. the proxy cut the stream once; the client resumed after the last event it had: nothing lost or repeated
    assert proxy.cut_count == 1 and len(proxy.requests) >= 2
    first, resumed = proxy.requests[0], proxy.requests[1]
    assert first.last_event_id is None and resumed.last_event_id is not None
    received = [tuple(e) for e in out["stream"]["received"]]
    assert received == [tuple(e) for e in out["stream"]["reference"]]
    assert received[-1][1] == "execution.completed"
    assert any(e[0] == int(resumed.last_event_id) for e in received)

    # 3. typed errors from real answers
    errors = out["errors"]
    expect = {"notFound": (404, "not_found", "NotFound"), "invalid": (422, "invalid_inputs", "ValidationFailed"),
              "unauthorized": (401, "unauthorized", "Unauthorized"), "forbidden": (403, "forbidden", "Forbidden"),
              "credits": (402, "insufficient_credits", "InsufficientCredits")}
    for name, (status, code, cls) in expect.items():
        e = errors[name]
        assert (e["status"], e["code"], e["name"]) == (status, code, cls), (name, e)
        assert e["isAPIError"] and e["classes"][cls], (name, e)
        assert e["requestId"], (name, e)
    assert [d["path"] for d in errors["invalid"]["details"]] == ["inputs.nope"]
    assert "execute" in errors["forbidden"]["message"]
    assert (errors["credits"]["required"], errors["credits"]["balance"]) == (5, 3)
    assert errors["credits"]["breakdown"] == [{"nodeId": "paid", "nodeType": "platform.priced", "credits": 5,
                                               "nodes": []}]

    # 4. upload → run → download: the same pixels came back, twice (bytes, and a Blob input uploaded by the client)
    f = out["files"]
    assert f["fileId"].startswith("file_") and f["size"] == source.stat().st_size and f["contentType"] == "image/png"
    assert f["isMedia"] and (f["width"], f["height"]) == (32, 16)
    for path in (tmp_path / "out.png", tmp_path / "out2.png"):
        with Image.open(path) as got:
            assert got.size == (32, 16) and list(got.convert("RGB").getdata()) == list(pixels.getdata())
    assert (f["tampered"]["status"], f["tampered"]["code"]) == (403, "invalid_signature")

    # 5. the callback verified with the account's secret; forged, foreign-secret and stale copies refused
    w = out["webhook"]
    assert w["type"] == "execution.completed" and w["payloadExecutionId"] == w["executionId"]
    assert w["outputs"] == {"greeting": "Hello hook!"} and w["webhookId"].startswith("dlv_")
    assert w["refused"] == [True, True, True]
