// A development stand-in for the nodeloom API (the server's /openapi.json), in memory, no dependencies.
// It serves web/dist at "/" with the SPA fallback the real server needs, and enough of /api/v1 to
// click through every page: sign-in with CSRF, nodes, workflows, validation, draft runs with SSE,
// executions, keys, webhooks, usage, uploads. It is not the product: nothing here is persisted.
//
//   npm run build && npm run mock        # http://127.0.0.1:5180  (demo@nodeloom.dev / password)
//   PORT=5181 node mock/server.mjs

import { randomBytes } from "node:crypto";
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const PORT = Number(process.env.PORT ?? 5180);
const HOST = process.env.HOST ?? "127.0.0.1";
const DIST = fileURLToPath(new URL("../dist/", import.meta.url));
const STEP_MS = Number(process.env.MOCK_STEP_MS ?? 700);

const id = (prefix) => `${prefix}_${randomBytes(6).toString("hex")}`;
const now = () => new Date().toISOString();

// ---- catalogue ---------------------------------------------------------------------------------

const port = (name, type, extra = {}) => ({ name, type, required: false, default: null, constraints: null, ...extra });
const NODES = [
  { type: "input.text", category: "input", displayName: "Text input", description: "A text the caller supplies.", inputs: [], outputs: [port("text", "text")], params: [port("name", "text", { required: true }), port("default", "text")], credits: 0 },
  { type: "input.integer", category: "input", displayName: "Integer input", description: "A whole number the caller supplies.", inputs: [], outputs: [port("value", "integer")], params: [port("name", "text", { required: true }), port("default", "integer")], credits: 0 },
  { type: "input.image", category: "input", displayName: "Image input", description: "An image: fileId, https URL or data: URI.", inputs: [], outputs: [port("image", "image")], params: [port("name", "text", { required: true })], credits: 0 },
  { type: "llm.expand_prompt", category: "llm", displayName: "Expand prompt", description: "Turns a short idea into a detailed image prompt.", inputs: [port("text", "text", { required: true })], outputs: [port("text", "text")], params: [port("style", "text", { default: "photographic", constraints: { enum: ["photographic", "illustration", "3d render"] } }), port("temperature", "number", { default: 0.7, constraints: { min: 0, max: 2 } })], credits: 1 },
  { type: "generate.flux_2_pro", category: "generate", displayName: "FLUX.2 [pro]", description: "Text to image, hosted.", inputs: [port("prompt", "text", { required: true }), port("seed", "integer")], outputs: [port("image", "image")], params: [port("aspectRatio", "text", { default: "1:1", constraints: { enum: ["1:1", "16:9", "9:16", "4:3"] } }), port("steps", "integer", { default: 28, constraints: { min: 1, max: 50 } }), port("safetyChecker", "boolean", { default: true })], credits: 5 },
  { type: "image.resize", category: "image", displayName: "Resize image", description: "Scales an image to fit a box.", inputs: [port("image", "image", { required: true })], outputs: [port("image", "image")], params: [port("width", "integer", { default: 512, constraints: { min: 16, max: 4096 } }), port("height", "integer", { default: 512, constraints: { min: 16, max: 4096 } }), port("mode", "text", { default: "fit", constraints: { enum: ["fit", "fill", "stretch"] } })], credits: 0 },
  { type: "image.grid", category: "image", displayName: "Split into tiles", description: "Cuts an image into a list of tiles.", inputs: [port("image", "image", { required: true })], outputs: [port("tiles", "list<image>")], params: [port("columns", "integer", { default: 2, constraints: { min: 1, max: 8 } })], credits: 0 },
  { type: "background.remove", category: "background", displayName: "Remove background", description: "U²-Net matting on the CPU.", inputs: [port("image", "image", { required: true })], outputs: [port("image", "image"), port("mask", "mask")], params: [], credits: 1 },
  { type: "upscale.realesrgan", category: "upscale", displayName: "Real-ESRGAN ×4", description: "Local upscaling on a GPU worker.", inputs: [port("image", "image", { required: true })], outputs: [port("image", "image")], params: [port("scale", "integer", { default: 4, constraints: { enum: [2, 3, 4] } })], credits: { per: "megapixel", amount: 2 }, resources: "gpu", available: false, unavailableReason: "No GPU worker is connected." },
  { type: "video.from_image", category: "video", displayName: "Image to video", description: "Animates a still (hosted).", inputs: [port("image", "image", { required: true }), port("prompt", "text")], outputs: [port("video", "video")], params: [port("durationS", "number", { default: 4, constraints: { min: 1, max: 10 } })], credits: { per: "second", amount: 3 } },
  { type: "text.template", category: "text", displayName: "Template", description: "Fills {placeholders} in a template.", inputs: [port("text", "text"), port("values", "json")], outputs: [port("text", "text")], params: [port("template", "text", { required: true, default: "{text}" })], credits: 0 },
  { type: "util.debug", category: "util", displayName: "Inspect", description: "Passes any value through.", inputs: [port("value", "any", { required: true })], outputs: [port("value", "any")], params: [], credits: 0 },
  { type: "output.image", category: "output", displayName: "Image output", description: "Names an image result.", inputs: [port("image", "image", { required: true })], outputs: [], params: [port("name", "text", { required: true })], credits: 0 },
  { type: "output.text", category: "output", displayName: "Text output", description: "Names a text result.", inputs: [port("text", "text", { required: true })], outputs: [], params: [port("name", "text", { required: true })], credits: 0 },
  { type: "output.video", category: "output", displayName: "Video output", description: "Names a video result.", inputs: [port("video", "video", { required: true })], outputs: [], params: [port("name", "text", { required: true })], credits: 0 },
].map((node) => ({ resources: "cpu", deterministic: true, available: true, unavailableReason: null, ...node }));
const NODE_BY_TYPE = new Map(NODES.map((node) => [node.type, node]));

// ---- state -------------------------------------------------------------------------------------

const account = { id: "acct_demo", name: "Demo studio", plan: "pro", credits: 500, webhookSecret: "whsec_demo" };
const user = { id: "usr_demo", email: "demo@nodeloom.dev", password: "password" };
const users = [user];
const sessions = new Map(); // session id → {userId, csrfToken}
const workflows = new Map();
const executions = new Map();
const keys = new Map();
const files = new Map();
const deliveries = [];

function seed() {
  const graph = {
    nodes: [
      { id: "prompt", type: "input.text", params: { name: "prompt", default: "a red fox in the snow" }, position: { x: 0, y: 40 } },
      { id: "expand", type: "llm.expand_prompt", inputs: { text: { from: "prompt", output: "text" } }, params: { style: "photographic" }, position: { x: 300, y: 0 } },
      { id: "gen", type: "generate.flux_2_pro", inputs: { prompt: { from: "expand", output: "text" } }, params: { aspectRatio: "1:1", steps: 28 }, position: { x: 600, y: 20 } },
      { id: "image", type: "output.image", inputs: { image: { from: "gen", output: "image" } }, params: { name: "image" }, position: { x: 900, y: 40 } },
    ],
  };
  createWorkflow({ name: "Fox portrait", description: "Prompt → expand → FLUX → image", graph });
  createWorkflow({ name: "Background cutout", description: "", graph: { nodes: [] } });
}

function deriveInputs(graph) {
  return graph.nodes
    .filter((node) => node.type.startsWith("input."))
    .map((node) => ({ name: node.params?.name ?? node.id, type: NODE_BY_TYPE.get(node.type)?.outputs[0]?.type ?? "any", required: node.params?.default === undefined, default: node.params?.default, constraints: null }));
}

function deriveOutputs(graph) {
  return graph.nodes.filter((node) => node.type.startsWith("output.")).map((node) => ({ name: node.params?.name ?? node.id, type: node.type.slice(7) }));
}

function createWorkflow({ name, description, graph }) {
  const workflow = { id: id("wf"), name, description: description ?? "", graph, publishedVersion: null, webhookId: id("wh"), webhook: { enabled: false, callbackUrl: null, callbackEvents: ["completed", "failed", "cancelled"], hasTriggerSecret: false }, versions: [], createdAt: now(), updatedAt: now() };
  workflows.set(workflow.id, workflow);
  return workflow;
}

function publicWorkflow(workflow) {
  const { versions, ...rest } = workflow;
  return { ...rest, inputs: deriveInputs(workflow.graph), outputs: deriveOutputs(workflow.graph) };
}

// ---- validation (a small copy of the engine's rules) ---------------------------------------

const listOf = (type) => /^list<(.+)>$/.exec(type)?.[1] ?? null;
function canFeed(from, to) {
  if (from === "any" || to === "any" || from === to) return true;
  if (from === "integer" && to === "number") return true;
  const a = listOf(from);
  const b = listOf(to);
  if (a && b) return canFeed(a, b);
  if (a && !b) return canFeed(a, to);
  return false;
}

function validate(graph) {
  const errors = [];
  const nodes = Array.isArray(graph?.nodes) ? graph.nodes : [];
  const index = new Map(nodes.map((node, i) => [node.id, i]));
  if (index.size !== nodes.length) errors.push({ path: "nodes", message: "Node ids must be unique." });
  nodes.forEach((node, i) => {
    const def = NODE_BY_TYPE.get(node.type);
    if (!def) return errors.push({ path: `nodes[${i}].type`, message: `Unknown node type ${node.type}.` });
    if (!def.available) errors.push({ path: `nodes[${i}].type`, message: def.unavailableReason });
    for (const input of def.inputs) {
      const value = node.inputs?.[input.name];
      if (value === undefined || value === null || value === "") {
        if (input.required) errors.push({ path: `nodes[${i}].inputs.${input.name}`, message: "Required input is missing." });
        continue;
      }
      if (typeof value === "object" && typeof value.from === "string") {
        const source = nodes[index.get(value.from)];
        if (!source) {
          errors.push({ path: `nodes[${i}].inputs.${input.name}`, message: `Links to missing node ${value.from}.` });
          continue;
        }
        const output = NODE_BY_TYPE.get(source.type)?.outputs.find((o) => o.name === value.output);
        if (!output) errors.push({ path: `nodes[${i}].inputs.${input.name}`, message: `${value.from} has no output ${value.output}.` });
        else if (!canFeed(output.type, input.type)) errors.push({ path: `nodes[${i}].inputs.${input.name}`, message: `Type mismatch: ${output.type} → ${input.type}.` });
      }
    }
    for (const param of def.params) {
      const value = node.params?.[param.name];
      if ((value === undefined || value === "") && param.required && param.default == null) errors.push({ path: `nodes[${i}].params.${param.name}`, message: "Required." });
      const { min, max, enum: options } = param.constraints ?? {};
      if (typeof value === "number" && typeof min === "number" && value < min) errors.push({ path: `nodes[${i}].params.${param.name}`, message: `Must be at least ${min}.` });
      if (typeof value === "number" && typeof max === "number" && value > max) errors.push({ path: `nodes[${i}].params.${param.name}`, message: `Must be at most ${max}.` });
      if (value !== undefined && Array.isArray(options) && !options.includes(value)) errors.push({ path: `nodes[${i}].params.${param.name}`, message: `Must be one of ${options.join(", ")}.` });
    }
  });
  return errors;
}

function order(graph) {
  const nodes = graph.nodes;
  const done = new Set();
  const result = [];
  while (result.length < nodes.length) {
    const ready = nodes.filter((node) => !done.has(node.id) && Object.values(node.inputs ?? {}).every((v) => !(v && typeof v === "object" && v.from) || done.has(v.from)));
    if (ready.length === 0) break;
    for (const node of ready) {
      done.add(node.id);
      result.push(node);
    }
  }
  return result;
}

function price(node) {
  const def = NODE_BY_TYPE.get(node.type);
  if (!def) return 0;
  return typeof def.credits === "number" ? def.credits : def.credits.amount * 2;
}

// ---- executions --------------------------------------------------------------------------------

function foxSvg(seed) {
  const hue = (seed * 47) % 360;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512" viewBox="0 0 512 512"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${hue},70%,85%)"/><stop offset="1" stop-color="hsl(${(hue + 60) % 360},60%,55%)"/></linearGradient></defs><rect width="512" height="512" fill="url(#g)"/><path d="M256 120 L340 300 L256 400 L172 300 Z" fill="#e8590c"/><path d="M172 300 L120 160 L230 230 Z M340 300 L392 160 L282 230 Z" fill="#d9480f"/><circle cx="226" cy="290" r="10" fill="#212529"/><circle cx="286" cy="290" r="10" fill="#212529"/><path d="M236 350 L256 380 L276 350 Z" fill="#fff"/></svg>`;
}

function outputsFor(node, values, execution) {
  const def = NODE_BY_TYPE.get(node.type);
  const inputOf = (name) => {
    const link = node.inputs?.[name];
    if (link && typeof link === "object" && link.from) return values.get(link.from)?.[link.output];
    return link;
  };
  if (node.type.startsWith("input.")) {
    const name = node.params?.name ?? node.id;
    return { [def.outputs[0].name]: execution.inputs[name] ?? node.params?.default ?? "" };
  }
  if (node.type === "llm.expand_prompt") return { text: `${inputOf("text")}, ${node.params?.style ?? "photographic"}, golden hour, 85mm, detailed fur` };
  if (node.type === "text.template") return { text: String(node.params?.template ?? "{text}").replace("{text}", inputOf("text") ?? "") };
  if (node.type.startsWith("output.")) return {};
  const out = {};
  for (const output of def.outputs) {
    if (output.type === "image" || output.type === "mask") {
      const fileId = id("file");
      files.set(fileId, { contentType: "image/svg+xml", body: Buffer.from(foxSvg(execution.seq + node.id.length)) });
      out[output.name] = { url: `/mock-files/${fileId}`, contentType: "image/svg+xml", width: 512, height: 512 };
    } else if (output.type === "list<image>") {
      out[output.name] = [1, 2].map((n) => {
        const fileId = id("file");
        files.set(fileId, { contentType: "image/svg+xml", body: Buffer.from(foxSvg(execution.seq + n * 3)) });
        return { url: `/mock-files/${fileId}`, contentType: "image/svg+xml", width: 256, height: 256 };
      });
    } else {
      out[output.name] = inputOf(def.inputs[0]?.name) ?? null;
    }
  }
  return out;
}

let executionSeq = 0;
function emit(execution, type, data) {
  const event = { id: String(execution.events.length + 1), type, data: { executionId: execution.executionId, ...data } };
  execution.events.push(event);
  for (const listener of execution.listeners) listener(event);
}

function startExecution(workflow, graph, inputs, version) {
  const execution = {
    executionId: id("ex"), workflowId: workflow.id, version, status: "QUEUED", progress: 0, queuePosition: 0, createdAt: now(), startedAt: null, completedAt: null,
    creditsUsed: 0, outputs: {}, nodes: {}, error: null, inputs, events: [], listeners: new Set(), seq: ++executionSeq, cancelled: false,
  };
  executions.set(execution.executionId, execution);
  const plan = order(graph);
  const values = new Map();
  const failOn = Object.values(inputs).some((value) => String(value).includes("fail"));
  (async () => {
    await sleep(STEP_MS / 2);
    execution.status = "RUNNING";
    execution.startedAt = now();
    emit(execution, "execution.started", {});
    for (const [i, node] of plan.entries()) {
      if (execution.cancelled) break;
      const cached = node.type.startsWith("input.") && execution.seq > 1;
      execution.nodes[node.id] = { status: "RUNNING", startedAt: now(), completedAt: null, cached: false, credits: 0, type: node.type };
      emit(execution, "node.started", { nodeId: node.id });
      if (!cached && !node.type.startsWith("input.") && !node.type.startsWith("output.")) {
        for (const p of [0.25, 0.5, 0.75]) {
          await sleep(STEP_MS / 3);
          emit(execution, "node.progress", { nodeId: node.id, progress: p });
        }
      }
      if (execution.cancelled) break;
      if (failOn && node.type.startsWith("generate.")) {
        execution.nodes[node.id] = { ...execution.nodes[node.id], status: "FAILED", completedAt: now(), error: { code: "provider_error", message: "The provider refused the prompt." } };
        emit(execution, "node.failed", { nodeId: node.id, error: { code: "provider_error", message: "The provider refused the prompt." } });
        execution.status = "FAILED";
        execution.error = { code: "node_failed", message: `Node ${node.id} failed: the provider refused the prompt.`, nodeId: node.id };
        execution.completedAt = now();
        emit(execution, "execution.failed", { error: execution.error });
        finish(execution);
        return;
      }
      const outputs = outputsFor(node, values, execution);
      values.set(node.id, outputs);
      const credits = cached ? 0 : price(node);
      execution.creditsUsed += credits;
      account.credits -= credits;
      execution.nodes[node.id] = { ...execution.nodes[node.id], status: "COMPLETED", completedAt: now(), cached, credits, outputs };
      if (node.type.startsWith("output.")) {
        const link = Object.values(node.inputs ?? {})[0];
        execution.outputs[node.params?.name ?? node.id] = link && link.from ? values.get(link.from)?.[link.output] : link;
      }
      execution.progress = (i + 1) / plan.length;
      emit(execution, "node.completed", { nodeId: node.id, cached, credits });
    }
    execution.completedAt = now();
    if (execution.cancelled) {
      execution.status = "CANCELLED";
      emit(execution, "execution.cancelled", {});
    } else {
      execution.status = "COMPLETED";
      execution.progress = 1;
      emit(execution, "execution.completed", {});
    }
    finish(execution);
  })();
  return execution;
}

function finish(execution) {
  if (workflows.get(execution.workflowId)?.webhook?.callbackUrl) {
    deliveries.push({ id: id("dlv"), executionId: execution.executionId, event: `execution.${execution.status.toLowerCase()}`, url: workflows.get(execution.workflowId).webhook.callbackUrl, statusCode: 200, attempt: 1, createdAt: now(), deliveredAt: now() });
  }
}

function pollBody(execution) {
  const { events, listeners, inputs, seq, cancelled, ...body } = execution;
  return body;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- HTTP --------------------------------------------------------------------------------------

function send(res, status, body, headers = {}) {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "X-Request-Id": id("req"), ...headers });
  res.end(status === 204 ? undefined : text);
}

const fail = (res, status, code, message, extra = {}) => send(res, status, { error: { code, message, ...extra } });

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function cookies(req) {
  return Object.fromEntries((req.headers.cookie ?? "").split(";").filter(Boolean).map((part) => part.trim().split("=").map(decodeURIComponent)));
}

function page(list, url) {
  const limit = Math.min(100, Number(url.searchParams.get("limit") ?? 20));
  const start = Number(url.searchParams.get("cursor") ?? 0);
  const data = list.slice(start, start + limit);
  return { data, nextCursor: start + limit < list.length ? String(start + limit) : null };
}

function newSession(res, who) {
  const sid = randomBytes(16).toString("hex");
  const csrfToken = randomBytes(16).toString("hex");
  sessions.set(sid, { userId: who.id, csrfToken });
  res.setHeader("Set-Cookie", `nl_session=${sid}; Path=/; HttpOnly; SameSite=Lax`);
  return { user: { id: who.id, email: who.email }, account: { id: account.id, name: account.name, plan: account.plan }, csrfToken };
}

async function api(req, res, url) {
  const path = url.pathname.slice("/api/v1".length);
  const method = req.method ?? "GET";
  const raw = method === "GET" ? Buffer.alloc(0) : await readBody(req);
  const isJson = (req.headers["content-type"] ?? "").includes("application/json");
  let body = {};
  if (isJson && raw.length) {
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      return fail(res, 400, "invalid_json", "The body is not valid JSON.");
    }
  }

  if (path === "/auth/config" && method === "GET") return send(res, 200, { signupEnabled: true });
  if (path === "/auth/login" && method === "POST") {
    const who = users.find((candidate) => candidate.email === String(body.email ?? "").toLowerCase() && candidate.password === body.password);
    if (!who) return fail(res, 401, "invalid_credentials", "Wrong email or password.");
    return send(res, 200, newSession(res, who));
  }
  if (path === "/auth/signup" && method === "POST") {
    if (!body.email || !body.password) return fail(res, 422, "validation_error", "Email and password are required.", { details: [{ path: "email", message: "required" }] });
    if (users.some((candidate) => candidate.email === body.email)) return fail(res, 409, "email_taken", "That email already has an account.");
    const who = { id: id("usr"), email: String(body.email).toLowerCase(), password: body.password };
    users.push(who);
    if (body.accountName) account.name = body.accountName;
    return send(res, 201, newSession(res, who));
  }

  const session = sessions.get(cookies(req).nl_session);
  if (!session) return fail(res, 401, "unauthorized", "Sign in to continue.", { signupEnabled: true });
  if (!["GET", "HEAD"].includes(method) && req.headers["x-csrf-token"] !== session.csrfToken) return fail(res, 403, "csrf_failed", "The CSRF token is missing or wrong.");
  const who = users.find((candidate) => candidate.id === session.userId);

  if (path === "/auth/me") return send(res, 200, { user: { id: who.id, email: who.email }, account: { id: account.id, name: account.name, plan: account.plan }, csrfToken: session.csrfToken });
  if (path === "/auth/logout" && method === "POST") {
    sessions.delete(cookies(req).nl_session);
    return send(res, 204);
  }
  if (path === "/nodes") return send(res, 200, { data: NODES });

  let m;
  if (/^\/workflows\/(?:[^/]+\/)?import\/comfyui$/.test(path)) {
    // the stand-in has no ComfyUI pool: the import dialog shows the server's 503 for it
    return fail(res, 503, "comfyui_unavailable", "no ComfyUI server has answered yet (the mock API has none)");
  }
  if (path === "/workflows" && method === "GET") {
    const q = (url.searchParams.get("q") ?? "").toLowerCase();
    const list = [...workflows.values()].filter((w) => w.name.toLowerCase().includes(q)).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt)).map(publicWorkflow);
    return send(res, 200, page(list, url));
  }
  if (path === "/workflows" && method === "POST") {
    const errors = validate(body.graph ?? { nodes: [] }).filter((e) => e.message.startsWith("Unknown"));
    if (errors.length) return fail(res, 422, "invalid_graph", "The graph is invalid.", { details: errors });
    return send(res, 201, publicWorkflow(createWorkflow({ name: body.name ?? "Untitled", description: body.description, graph: body.graph ?? { nodes: [] } })));
  }
  if (path === "/workflows/validate" && method === "POST") {
    const errors = validate(body.graph);
    return send(res, 200, { valid: errors.length === 0, errors });
  }
  if (path === "/workflows/executions" && method === "GET") {
    const workflowId = url.searchParams.get("workflowId");
    const status = url.searchParams.get("status");
    const list = [...executions.values()].filter((e) => (!workflowId || e.workflowId === workflowId) && (!status || e.status === status)).reverse().map(pollBody);
    return send(res, 200, page(list, url));
  }
  if ((m = /^\/workflows\/executions\/([^/]+)\/(poll|events|cancel)$/.exec(path))) {
    const execution = executions.get(m[1]);
    if (!execution) return fail(res, 404, "not_found", "No such execution.");
    if (m[2] === "poll") return send(res, 200, pollBody(execution));
    if (m[2] === "cancel") {
      if (["COMPLETED", "FAILED", "CANCELLED"].includes(execution.status)) return fail(res, 409, "execution_finished", "The execution has already finished.");
      execution.cancelled = true;
      return send(res, 202, { executionId: execution.executionId, status: execution.status });
    }
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
    const after = Number(req.headers["last-event-id"] ?? 0);
    const write = (event) => res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`);
    const terminal = (event) => event.type.startsWith("execution.") && event.type !== "execution.started";
    for (const event of execution.events.filter((e) => Number(e.id) > after)) write(event);
    if (execution.events.some(terminal)) return res.end();
    const listener = (event) => {
      write(event);
      if (terminal(event)) {
        execution.listeners.delete(listener);
        res.end();
      }
    };
    execution.listeners.add(listener);
    req.on("close", () => execution.listeners.delete(listener));
    return;
  }
  if ((m = /^\/workflows\/([^/]+)(?:\/(publish|versions|execute|estimate|webhook|webhook\/rotate)(?:\/(\d+))?)?$/.exec(path))) {
    const workflow = workflows.get(m[1]);
    if (!workflow) return fail(res, 404, "not_found", "No such workflow.");
    const action = m[2];
    if (!action && method === "GET") return send(res, 200, publicWorkflow(workflow));
    if (!action && method === "PUT") {
      const errors = validate(body.graph).filter((e) => e.message.startsWith("Unknown"));
      if (errors.length) return fail(res, 422, "invalid_graph", "The graph is invalid.", { details: errors });
      Object.assign(workflow, { name: body.name ?? workflow.name, description: body.description ?? "", graph: body.graph, updatedAt: now() });
      return send(res, 200, publicWorkflow(workflow));
    }
    if (!action && method === "DELETE") {
      workflows.delete(workflow.id);
      return send(res, 204);
    }
    if (action === "publish" && method === "POST") {
      const errors = validate(workflow.graph);
      if (errors.length) return fail(res, 422, "invalid_graph", "Fix the graph before publishing.", { details: errors });
      const version = workflow.versions.length + 1;
      workflow.versions.push({ version, publishedAt: now(), graph: structuredClone(workflow.graph), name: workflow.name });
      workflow.publishedVersion = version;
      workflow.webhook.enabled = true;
      return send(res, 201, { workflowId: workflow.id, version, publishedAt: now() });
    }
    if (action === "versions" && m[3]) {
      const version = workflow.versions.find((v) => v.version === Number(m[3]));
      return version ? send(res, 200, version) : fail(res, 404, "not_found", "No such version.");
    }
    if (action === "versions") return send(res, 200, { data: workflow.versions.map(({ graph, ...v }) => v), nextCursor: null });
    if (action === "estimate") {
      const breakdown = workflow.graph.nodes.map((node) => ({ nodeId: node.id, nodeType: node.type, credits: price(node) }));
      const credits = breakdown.reduce((sum, item) => sum + item.credits, 0);
      return send(res, 200, { credits, balance: account.credits, sufficient: credits <= account.credits, breakdown });
    }
    if (action === "execute" && method === "POST") {
      const isDraft = body.version === "draft";
      const graph = isDraft ? workflow.graph : workflow.versions.at(-1)?.graph;
      if (!graph) return fail(res, 409, "workflow_not_published", "Publish the workflow before calling it.");
      const errors = validate(graph);
      if (errors.length) return fail(res, 422, "invalid_graph", "The graph is invalid.", { details: errors });
      const execution = startExecution(workflow, graph, body.inputs ?? {}, isDraft ? "draft" : workflow.publishedVersion);
      return send(res, 202, { executionId: execution.executionId, status: "QUEUED", pollUrl: `/api/v1/workflows/executions/${execution.executionId}/poll` });
    }
    if (action === "webhook" && method === "PATCH") {
      if (body.callbackUrl && !/^https:\/\//.test(body.callbackUrl)) return fail(res, 422, "invalid_url", "Callback URLs must use https.", { details: [{ path: "callbackUrl", message: "must be https" }] });
      workflow.webhook = { enabled: !!body.enabled, callbackUrl: body.callbackUrl ?? null, callbackEvents: body.callbackEvents ?? workflow.webhook.callbackEvents, hasTriggerSecret: workflow.webhook.hasTriggerSecret || !!body.triggerSecret };
      return send(res, 200, { webhookId: workflow.webhookId, ...workflow.webhook });
    }
    if (action === "webhook/rotate" && method === "POST") {
      workflow.webhookId = id("wh");
      return send(res, 200, { webhookId: workflow.webhookId });
    }
  }
  if (path === "/keys" && method === "GET") return send(res, 200, { data: [...keys.values()].map(({ key, ...rest }) => rest) });
  if (path === "/keys" && method === "POST") {
    const key = `sk-${randomBytes(24).toString("hex")}`;
    const record = { id: id("key"), name: body.name ?? "key", key, prefix: key.slice(0, 10), scopes: body.scopes ?? [], createdAt: now(), lastUsedAt: null, expiresAt: null };
    keys.set(record.id, record);
    return send(res, 201, record);
  }
  if ((m = /^\/keys\/([^/]+)$/.exec(path)) && method === "DELETE") {
    if (!keys.delete(m[1])) return fail(res, 404, "not_found", "No such key.");
    return send(res, 204);
  }
  if (path === "/webhook-deliveries") {
    const executionId = url.searchParams.get("executionId");
    return send(res, 200, { data: deliveries.filter((d) => !executionId || d.executionId === executionId), nextCursor: null });
  }
  if ((m = /^\/webhook-deliveries\/([^/]+)\/redeliver$/.exec(path)) && method === "POST") {
    const original = deliveries.find((d) => d.id === m[1]);
    if (!original) return fail(res, 404, "not_found", "No such delivery.");
    deliveries.push({ ...original, id: id("dlv"), attempt: original.attempt + 1, createdAt: now(), deliveredAt: now() });
    return send(res, 202, { status: "queued" });
  }
  if (path === "/usage") {
    const daily = Array.from({ length: 14 }, (_, i) => {
      const date = new Date(Date.now() - (13 - i) * 86400000).toISOString().slice(0, 10);
      const executionsThatDay = [...executions.values()].filter((e) => e.createdAt.startsWith(date));
      const base = (i * 7) % 11;
      return { date, executions: base + executionsThatDay.length, credits: base * 4 + executionsThatDay.reduce((s, e) => s + e.creditsUsed, 0) };
    });
    return send(res, 200, { plan: account.plan, credits: { balance: account.credits }, executions: { today: daily.at(-1).executions, dailyLimit: 1000, thisMonth: daily.reduce((s, d) => s + d.executions, 0) }, rateLimits: { requestsPerMinute: 60, executionsPerMinute: 10 }, daily });
  }
  if (path === "/uploads" && method === "POST") {
    const fileId = id("file");
    const type = /Content-Type: ([^\r\n]+)/i.exec(raw.toString("latin1"))?.[1] ?? "application/octet-stream";
    const start = raw.indexOf("\r\n\r\n") + 4;
    const end = raw.lastIndexOf(Buffer.from("\r\n--"));
    files.set(fileId, { contentType: type, body: raw.subarray(start, end > start ? end : raw.length) });
    return send(res, 201, { fileId, url: `/mock-files/${fileId}`, contentType: type, size: end - start });
  }
  if (path === "/account") return send(res, 200, account);
  return fail(res, 404, "not_found", `No route ${method} ${url.pathname}.`);
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json" };

function serveStatic(req, res, url) {
  const file = normalize(join(DIST, decodeURIComponent(url.pathname)));
  const inside = file.startsWith(DIST);
  // The SPA fallback: any other path is a client-side route, so it gets index.html.
  const target = inside && existsSync(file) && statSync(file).isFile() ? file : join(DIST, "index.html");
  if (!existsSync(target)) {
    res.writeHead(500, { "Content-Type": "text/plain" });
    return res.end("web/dist is missing: run `npm run build` first.");
  }
  res.writeHead(200, { "Content-Type": TYPES[extname(target)] ?? "application/octet-stream", "Cache-Control": target.includes("/assets/") ? "public, max-age=31536000, immutable" : "no-cache" });
  createReadStream(target).pipe(res);
}

seed();
createServer((req, res) => {
  const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
  if (url.pathname.startsWith("/api/v1/")) {
    return api(req, res, url).catch((error) => {
      console.error(error);
      fail(res, 500, "internal_error", "The mock server failed.");
    });
  }
  const fileMatch = /^\/mock-files\/([^/]+)$/.exec(url.pathname);
  if (fileMatch) {
    const file = files.get(fileMatch[1]);
    if (!file) return fail(res, 404, "not_found", "No such file.");
    res.writeHead(200, { "Content-Type": file.contentType });
    return res.end(file.body);
  }
  serveStatic(req, res, url);
}).listen(PORT, HOST, () => console.log(`nodeloom mock API + dashboard on http://${HOST}:${PORT} (demo@nodeloom.dev / password)`));
