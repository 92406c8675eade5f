import { useState, type FormEvent } from "react";
import { describeError } from "../api/client";
import { keys as keysApi } from "../api/endpoints";
import type { CreatedApiKey, Scope } from "../api/types";
import { CopyButton } from "../components/CodeBlock";
import { ConfirmButton } from "../components/ConfirmButton";
import { EmptyState, ErrorMessage, Loading } from "../components/Feedback";
import { useLoader } from "../hooks/useLoader";
import { formatDateTime } from "../lib/format";

const SCOPES: { id: Scope; text: string }[] = [
  { id: "execute", text: "run workflows, upload files, cancel" },
  { id: "read", text: "read workflows, executions, results" },
  { id: "usage", text: "read usage" },
  { id: "manage", text: "change workflows, webhooks, keys" },
];

export function KeysPage() {
  const list = useLoader(async () => (await keysApi.list()).data ?? [], []);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Scope[]>(["execute", "read"]);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function create(event: FormEvent) {
    event.preventDefault();
    if (scopes.length === 0) {
      setError("Choose at least one scope.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const key = await keysApi.create({ name: name.trim() || "API key", scopes });
      setCreated(key);
      setName("");
      list.reload();
    } catch (reason) {
      setError(describeError(reason));
    } finally {
      setBusy(false);
    }
  }

  async function revoke(id: string) {
    setError(null);
    try {
      await keysApi.revoke(id);
      if (created?.id === id) setCreated(null);
      list.reload();
    } catch (reason) {
      setError(describeError(reason));
    }
  }

  return (
    <div className="page">
      <div className="page-header">
        <h1>API keys</h1>
      </div>
      <section className="card">
        <div className="card-header">
          <h2>Create a key</h2>
        </div>
        <form onSubmit={create} className="form-grid">
          <div className="field">
            <label htmlFor="key-name">Name</label>
            <input id="key-name" value={name} placeholder="e.g. production backend" onChange={(event) => setName(event.target.value)} data-testid="key-name" />
          </div>
          <fieldset className="field">
            <legend>Scopes</legend>
            <div className="checkbox-col">
              {SCOPES.map((scope) => (
                <label key={scope.id} className="check">
                  <input
                    type="checkbox"
                    checked={scopes.includes(scope.id)}
                    onChange={(event) => setScopes((list) => (event.target.checked ? [...list, scope.id] : list.filter((item) => item !== scope.id)))}
                    data-testid={`key-scope-${scope.id}`}
                  />
                  <strong>{scope.id}</strong> <span className="muted small">{scope.text}</span>
                </label>
              ))}
            </div>
          </fieldset>
          <ErrorMessage message={error} testId="key-error" />
          <div className="button-row">
            <button type="submit" className="btn btn-primary" disabled={busy} data-testid="key-create">
              {busy ? "Creating…" : "Create key"}
            </button>
          </div>
        </form>
        {created && (
          <div className="alert alert-success key-reveal" role="status" data-testid="key-created">
            <div>
              <strong>Copy this key now: it will not be shown again.</strong>
              <div className="inline">
                <code className="break" data-testid="key-created-value">
                  {created.key}
                </code>
                <CopyButton text={created.key} testId="key-created-copy" />
              </div>
            </div>
            <button type="button" className="btn btn-small btn-ghost" onClick={() => setCreated(null)} aria-label="Hide the new key" data-testid="key-created-dismiss">
              ×
            </button>
          </div>
        )}
      </section>

      <section className="card">
        <div className="card-header">
          <h2>Keys</h2>
        </div>
        {list.loading && !list.data ? (
          <Loading label="Loading keys…" />
        ) : list.error ? (
          <ErrorMessage message={list.error} onRetry={list.reload} testId="keys-error" />
        ) : !list.data || list.data.length === 0 ? (
          <EmptyState title="No API keys yet." testId="keys-empty" />
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="keys-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Key</th>
                  <th>Scopes</th>
                  <th>Created</th>
                  <th>Last used</th>
                  <th>Expires</th>
                  <th className="actions-col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((key) => (
                  <tr key={key.id} data-testid="key-row" data-key-id={key.id}>
                    <td>{key.name}</td>
                    <td className="mono">{key.prefix}…</td>
                    <td>
                      {key.scopes.map((scope) => (
                        <span key={scope} className="badge">
                          {scope}
                        </span>
                      ))}
                    </td>
                    <td className="nowrap">{formatDateTime(key.createdAt)}</td>
                    <td className="nowrap">{key.lastUsedAt ? formatDateTime(key.lastUsedAt) : "never"}</td>
                    <td className="nowrap">{key.expiresAt ? formatDateTime(key.expiresAt) : "never"}</td>
                    <td className="actions-col">
                      <ConfirmButton label="Revoke" confirmLabel="Revoke now" onConfirm={() => revoke(key.id)} testId="key-revoke" ariaLabel={`Revoke ${key.name}`} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}
