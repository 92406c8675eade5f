// Code snippets for a workflow's API page, filled with real ids and an example inputs object.

import type { FieldSchema } from "../api/types";
import { listElement, normaliseType } from "./portTypes";

export type SnippetLanguage = "curl" | "python" | "javascript";
export type SnippetKind = "execute" | "poll" | "webhook";

export interface SnippetContext {
  origin: string;
  workflowId: string;
  webhookId: string | null;
  inputs: Record<string, unknown>;
  /** An execution id to show in poll snippets; a placeholder when none is known. */
  executionId?: string | null;
}

const API_KEY_ENV = "NODELOOM_API_KEY";

/** An example value for one workflow input: its default, else a placeholder of the right type. */
export function exampleValue(schema: FieldSchema): unknown {
  if (schema.default !== undefined && schema.default !== null) return schema.default;
  const options = schema.constraints?.enum;
  if (Array.isArray(options) && options.length > 0) return options[0];
  const type = normaliseType(schema.type);
  const element = listElement(type);
  if (element !== null) return [exampleValue({ ...schema, type: element, default: undefined })];
  const { min } = schema.constraints ?? {};
  switch (type) {
    case "number":
    case "integer":
      return typeof min === "number" ? min : 1;
    case "boolean":
      return false;
    case "json":
    case "any":
      return {};
    case "image":
    case "mask":
      return "https://example.com/input.png";
    case "video":
      return "https://example.com/input.mp4";
    case "audio":
      return "https://example.com/input.mp3";
    case "file":
      return "file_...";
    default:
      return `your ${schema.name}`;
  }
}

export function exampleInputs(schemas: readonly FieldSchema[]): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  for (const schema of schemas) inputs[schema.name] = exampleValue(schema);
  return inputs;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function pythonLiteral(value: unknown, indent = 0): string {
  const pad = "    ".repeat(indent + 1);
  const close = "    ".repeat(indent);
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[${value.map((item) => pythonLiteral(item, indent)).join(", ")}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return "{}";
  return `{\n${entries.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${pythonLiteral(v, indent + 1)},`).join("\n")}\n${close}}`;
}

function indentJson(value: unknown, indent: number): string {
  return JSON.stringify(value, null, 2).replace(/\n/g, `\n${" ".repeat(indent)}`);
}

export function snippet(kind: SnippetKind, language: SnippetLanguage, context: SnippetContext): string {
  const base = `${context.origin.replace(/\/$/, "")}/api/v1`;
  const executeUrl = `${base}/workflows/${context.workflowId}/execute`;
  const executionId = context.executionId || "EXECUTION_ID";
  const pollUrl = `${base}/workflows/executions/${executionId}/poll`;
  const webhookUrl = `${base}/webhooks/${context.webhookId ?? "WEBHOOK_ID"}`;
  const body = { inputs: context.inputs };

  if (language === "curl") {
    switch (kind) {
      case "execute":
        return [
          `curl -X POST ${shellQuote(executeUrl)} \\`,
          `  -H "Authorization: Bearer $${API_KEY_ENV}" \\`,
          `  -H "Content-Type: application/json" \\`,
          `  -H "Idempotency-Key: $(uuidgen)" \\`,
          `  -d ${shellQuote(JSON.stringify(body))}`,
        ].join("\n");
      case "poll":
        return [`curl ${shellQuote(pollUrl)} \\`, `  -H "Authorization: Bearer $${API_KEY_ENV}"`].join("\n");
      case "webhook":
        return [
          `curl -X POST ${shellQuote(webhookUrl)} \\`,
          `  -H "Content-Type: application/json" \\`,
          `  -d ${shellQuote(JSON.stringify(context.inputs))}`,
        ].join("\n");
    }
  }

  if (language === "python") {
    const header = [
      "import os",
      "from nodeloom.client import Client",
      "",
      `client = Client(base_url=${JSON.stringify(context.origin)}, api_key=os.environ[${JSON.stringify(API_KEY_ENV)}])`,
    ];
    switch (kind) {
      case "execute":
        return [
          ...header,
          `execution = client.execute(`,
          `    ${JSON.stringify(context.workflowId)},`,
          `    inputs=${pythonLiteral(context.inputs, 1)},`,
          `)`,
          `result = client.wait(execution.execution_id)`,
          `print(result.status, result.outputs)`,
        ].join("\n");
      case "poll":
        return [...header, `result = client.poll(${JSON.stringify(executionId)})`, `print(result.status, result.outputs)`].join("\n");
      case "webhook":
        return [
          "import httpx",
          "",
          `response = httpx.post(${JSON.stringify(webhookUrl)}, json=${pythonLiteral(context.inputs)})`,
          `print(response.json()["executionId"])`,
        ].join("\n");
    }
  }

  switch (kind) {
    case "execute":
      return [
        `const response = await fetch(${JSON.stringify(executeUrl)}, {`,
        `  method: "POST",`,
        `  headers: {`,
        `    Authorization: \`Bearer \${process.env.${API_KEY_ENV}}\`,`,
        `    "Content-Type": "application/json",`,
        `    "Idempotency-Key": crypto.randomUUID(),`,
        `  },`,
        `  body: JSON.stringify(${indentJson(body, 2)}),`,
        `});`,
        `const { executionId } = await response.json();`,
      ].join("\n");
    case "poll":
      return [
        `const response = await fetch(${JSON.stringify(pollUrl)}, {`,
        `  headers: { Authorization: \`Bearer \${process.env.${API_KEY_ENV}}\` },`,
        `});`,
        `const { status, outputs } = await response.json();`,
      ].join("\n");
    case "webhook":
      return [
        `const response = await fetch(${JSON.stringify(webhookUrl)}, {`,
        `  method: "POST",`,
        `  headers: { "Content-Type": "application/json" },`,
        `  body: JSON.stringify(${indentJson(context.inputs, 2)}),`,
        `});`,
        `const { executionId } = await response.json();`,
      ].join("\n");
  }
}
