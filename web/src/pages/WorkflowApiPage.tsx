// A workflow's API page: how to call it (curl, Python SDK, fetch) with its real ids, its webhook
// trigger and callback settings, and the delivery log of its callbacks.

import { useEffect, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router-dom";
import { describeError } from "../api/client";
import { executions, workflows } from "../api/endpoints";
import type { WebhookSettings, Workflow } from "../api/types";
import { CodeBlock } from "../components/CodeBlock";
import { ConfirmButton } from "../components/ConfirmButton";
import { Deliveries } from "../components/Deliveries";
import { ErrorMessage, Loading, Notice } from "../components/Feedback";
import { useLoader } from "../hooks/useLoader";
import { exampleInputs, snippet, type SnippetKind, type SnippetLanguage } from "../lib/snippets";

const LANGUAGES: { id: SnippetLanguage; label: string }[] = [
  { id: "curl", label: "curl" },
  { id: "python", label: "Python SDK" },
  { id: "javascript", label: "JavaScript" },
];

const SNIPPETS: { kind: SnippetKind; title: string; text: string }[] = [
  { kind: "execute", title: "Execute", text: "Queues a run of the latest published version and answers 202 with an executionId." },
  { kind: "poll", title: "Poll", text: "Status, progress, outputs (signed media URLs) and credits of one execution." },
  { kind: "webhook", title: "Webhook trigger", text: "No credentials needed: the JSON body is the inputs object itself." },
];

export const CALLBACK_EVENTS = ["started", "node.completed", "completed", "failed", "cancelled"] as const;
const DEFAULT_CALLBACK_EVENTS = ["completed", "failed", "cancelled"];

export function WorkflowApiPage() {
  const { id = "" } = useParams();
  const loaded = useLoader(() => workflows.get(id), [id]);
  const [language, setLanguage] = useState<SnippetLanguage>("curl");
  const latest = useLoader(async () => {
    const page = await executions.list({ workflowId: id, limit: 1 });
    const first = page?.data?.[0];
    return first ? (first.executionId ?? first.id ?? null) : null;
  }, [id]);

  if (loaded.loading && !loaded.data) return <Loading label="Loading workflow…" />;
  if (loaded.error || !loaded.data) {
    return (
      <div className="page">
        <ErrorMessage message={loaded.error ?? "Workflow not found."} onRetry={loaded.reload} testId="api-page-error" />
      </div>
    );
  }
  const workflow = loaded.data;
  const origin = window.location.origin;
  const context = {
    origin,
    workflowId: workflow.id,
    webhookId: workflow.webhookId ?? null,
    inputs: exampleInputs(workflow.inputs ?? []),
    executionId: latest.data,
  };

  return (
    <div className="page" data-testid="api-page">
      <div className="page-header">
        <div>
          <h1>{workflow.name} · API</h1>
          <div className="muted small mono" data-testid="api-workflow-id">{workflow.id}</div>
        </div>
        <div className="page-actions">
          <Link to={`/workflows/${workflow.id}`} className="btn">
            Open editor
          </Link>
          <Link to={`/executions?workflowId=${encodeURIComponent(workflow.id)}`} className="btn">
            Executions
          </Link>
          <Link to="/keys" className="btn">
            API keys
          </Link>
        </div>
      </div>

      {!workflow.publishedVersion && (
        <Notice tone="warning" testId="api-not-published">
          This workflow has no published version yet: API calls and webhook triggers answer 409 until you publish it from the editor.
        </Notice>
      )}

      <section className="card">
        <div className="card-header">
          <h2>Call it</h2>
          <div className="segmented" role="tablist" aria-label="Snippet language">
            {LANGUAGES.map((option) => (
              <button
                key={option.id}
                type="button"
                role="tab"
                aria-selected={language === option.id}
                className={language === option.id ? "active" : undefined}
                onClick={() => setLanguage(option.id)}
                data-testid={`snippet-lang-${option.id}`}
              >
                {option.label}
              </button>
            ))}
          </div>
        </div>
        <p className="muted small">
          Put a key with the <code>execute</code> and <code>read</code> scopes in <code>NODELOOM_API_KEY</code>.
          {workflow.inputs && workflow.inputs.length > 0 ? " The inputs below are examples from the workflow's input schema." : ""}
        </p>
        {SNIPPETS.map((item) => (
          <div key={item.kind} className="snippet">
            <h3>{item.title}</h3>
            <p className="muted small">{item.text}</p>
            <CodeBlock code={snippet(item.kind, language, context)} testId={`snippet-${item.kind}`} />
          </div>
        ))}
        {workflow.inputs && workflow.inputs.length > 0 && (
          <div className="snippet">
            <h3>Inputs</h3>
            <table className="table compact" data-testid="api-inputs">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Type</th>
                  <th>Required</th>
                  <th>Default</th>
                </tr>
              </thead>
              <tbody>
                {workflow.inputs.map((input) => (
                  <tr key={input.name}>
                    <td className="mono">{input.name}</td>
                    <td>{input.type}</td>
                    <td>{input.required ? "yes" : "no"}</td>
                    <td className="mono small">{input.default === undefined ? "—" : JSON.stringify(input.default)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <WebhookSettingsCard workflow={workflow} onChange={(next) => loaded.setData(next)} />

      <DeliveriesCard defaultExecutionId={latest.data ?? ""} />
    </div>
  );
}

function WebhookSettingsCard({ workflow, onChange }: { workflow: Workflow; onChange: (workflow: Workflow) => void }) {
  const current: WebhookSettings = workflow.webhook ?? {};
  const [enabled, setEnabled] = useState(current.enabled ?? !!workflow.publishedVersion);
  const [secret, setSecret] = useState("");
  const [callbackUrl, setCallbackUrl] = useState(current.callbackUrl ?? "");
  const [events, setEvents] = useState<string[]>(current.callbackEvents ?? DEFAULT_CALLBACK_EVENTS);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const triggerUrl = `${window.location.origin}/api/v1/webhooks/${workflow.webhookId ?? "…"}`;

  async function save(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      const body: Parameters<typeof workflows.updateWebhook>[1] = {
        enabled,
        callbackUrl: callbackUrl.trim() || null,
        callbackEvents: events,
      };
      if (secret.trim()) body.triggerSecret = secret.trim();
      const answer = await workflows.updateWebhook(workflow.id, body);
      const settings = (answer && typeof answer === "object" ? answer : {}) as WebhookSettings & Partial<Workflow>;
      onChange({ ...workflow, webhookId: settings.webhookId ?? workflow.webhookId, webhook: { ...current, ...body, ...settings } });
      setSecret("");
      setSaved("Webhook settings saved.");
    } catch (reason) {
      setError(describeError(reason));
    } finally {
      setBusy(false);
    }
  }

  async function rotate() {
    setError(null);
    setSaved(null);
    try {
      const answer = await workflows.rotateWebhook(workflow.id);
      const next = answer?.webhookId ? answer.webhookId : (await workflows.get(workflow.id)).webhookId;
      onChange({ ...workflow, webhookId: next ?? workflow.webhookId });
      setSaved("A new webhook id was issued; the old trigger URL no longer works.");
    } catch (reason) {
      setError(describeError(reason));
    }
  }

  return (
    <section className="card" data-testid="webhook-settings">
      <div className="card-header">
        <h2>Webhook</h2>
      </div>
      <div className="field">
        <span className="field-label">Trigger URL</span>
        <div className="inline">
          <code className="break" data-testid="webhook-trigger-url">{triggerUrl}</code>
          <ConfirmButton label="Rotate id" confirmLabel="Issue a new id" onConfirm={rotate} testId="webhook-rotate" />
        </div>
      </div>
      <form onSubmit={save} className="form-grid">
        <div className="field field-check">
          <input id="webhook-enabled" type="checkbox" checked={enabled} onChange={(event) => setEnabled(event.target.checked)} data-testid="webhook-enabled" />
          <label htmlFor="webhook-enabled">Accept triggers at this URL</label>
        </div>
        <div className="field">
          <label htmlFor="webhook-secret">
            Trigger secret <span className="field-hint">{current.hasTriggerSecret ? "set; type a new one to replace it" : "optional; triggers must then be signed"}</span>
          </label>
          <input id="webhook-secret" type="text" className="mono" autoComplete="off" spellCheck={false} value={secret} onChange={(event) => setSecret(event.target.value)} data-testid="webhook-secret" />
        </div>
        <div className="field">
          <label htmlFor="webhook-callback">
            Callback URL <span className="field-hint">default for executions that name none</span>
          </label>
          <input id="webhook-callback" type="url" placeholder="https://example.com/hooks/nodeloom" value={callbackUrl} onChange={(event) => setCallbackUrl(event.target.value)} data-testid="webhook-callback-url" />
        </div>
        <fieldset className="field">
          <legend>Callback events</legend>
          <div className="checkbox-row">
            {CALLBACK_EVENTS.map((name) => (
              <label key={name} className="check">
                <input
                  type="checkbox"
                  checked={events.includes(name)}
                  onChange={(event) => setEvents((list) => (event.target.checked ? [...list, name] : list.filter((item) => item !== name)))}
                  data-testid={`webhook-event-${name}`}
                />
                {name}
              </label>
            ))}
          </div>
        </fieldset>
        <ErrorMessage message={error} testId="webhook-error" />
        {saved && <Notice tone="success" testId="webhook-message">{saved}</Notice>}
        <div className="button-row">
          <button type="submit" className="btn btn-primary" disabled={busy} data-testid="webhook-save">
            {busy ? "Saving…" : "Save webhook settings"}
          </button>
        </div>
      </form>
    </section>
  );
}

function DeliveriesCard({ defaultExecutionId }: { defaultExecutionId: string }) {
  const [executionId, setExecutionId] = useState(defaultExecutionId);
  const [shown, setShown] = useState(defaultExecutionId);
  useEffect(() => {
    setExecutionId((value) => value || defaultExecutionId);
    setShown((value) => value || defaultExecutionId);
  }, [defaultExecutionId]);

  return (
    <section className="card" data-testid="deliveries-card">
      <div className="card-header">
        <h2>Callback deliveries</h2>
      </div>
      <form
        className="inline"
        onSubmit={(event) => {
          event.preventDefault();
          setShown(executionId.trim());
        }}
      >
        <label htmlFor="deliveries-execution" className="visually-hidden">
          Execution id
        </label>
        <input id="deliveries-execution" placeholder="ex_…" value={executionId} onChange={(event) => setExecutionId(event.target.value)} data-testid="deliveries-execution-id" />
        <button type="submit" className="btn" data-testid="deliveries-load">
          Show deliveries
        </button>
      </form>
      {shown ? <Deliveries executionId={shown} /> : <p className="muted small">Enter an execution id to see its callback attempts.</p>}
    </section>
  );
}
