// Runs the draft: a form from the workflow's inputs, live state from the event stream, then the
// poll body's outputs and credits.

import { useMemo, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { describeError } from "../api/client";
import { workflows } from "../api/endpoints";
import type { Estimate } from "../api/types";
import { ErrorMessage } from "../components/Feedback";
import { OutputList } from "../components/OutputValue";
import { SchemaField } from "../components/SchemaField";
import { formatCredits, formatDuration, durationMs } from "../lib/format";
import { isTerminal } from "../lib/runState";
import { buildInputs } from "../lib/schemaFields";
import { deriveInputs } from "../lib/workflowInputs";
import { nodeTimings } from "../run/nodeTimings";
import { cancelRun, runDraft } from "../run/runController";
import { useEditorStore } from "../stores/editorStore";
import { useGraphStore } from "../stores/graphStore";
import { useRunStore } from "../stores/runStore";
import { saveDraft } from "./editorActions";

const STATUS_TEXT: Record<string, string> = {
  QUEUED: "Queued",
  RUNNING: "Running",
  COMPLETED: "Completed",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
};

export function RunPanel() {
  const workflow = useEditorStore((state) => state.workflow);
  const dirty = useGraphStore((state) => state.dirty);
  const nodes = useGraphStore((state) => state.nodes);
  const catalog = useGraphStore((state) => state.catalog);
  const workflowId = useGraphStore((state) => state.workflowId);
  const phase = useRunStore((state) => state.phase);
  const run = useRunStore((state) => state.run);
  const poll = useRunStore((state) => state.poll);
  const executionId = useRunStore((state) => state.executionId);
  const runError = useRunStore((state) => state.error);
  const connection = useRunStore((state) => state.connection);
  const timings = useMemo(() => nodeTimings(run, poll?.startedAt), [run, poll?.startedAt]);

  const [values, setValues] = useState<Record<string, unknown>>({});
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [estimate, setEstimate] = useState<Estimate | null>(null);
  const [busy, setBusy] = useState(false);

  const schemas = useMemo(
    () => (!dirty && Array.isArray(workflow?.inputs) ? workflow.inputs : deriveInputs(nodes, catalog)),
    [dirty, workflow, nodes, catalog],
  );

  async function ensureSaved(): Promise<boolean> {
    if (!useGraphStore.getState().dirty) return true;
    return saveDraft();
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!workflowId) return;
    setFormError(null);
    setEstimate(null);
    const { inputs, errors } = buildInputs(schemas, values);
    setFieldErrors(errors);
    if (Object.keys(errors).length > 0) return;
    setBusy(true);
    try {
      if (!(await ensureSaved())) {
        setFormError("Save failed, so the draft was not run. See the message above the canvas.");
        return;
      }
      await runDraft(workflowId, inputs, useGraphStore.getState().nodes.map((node) => node.id));
    } catch (error) {
      setFormError(describeError(error));
    } finally {
      setBusy(false);
    }
  }

  async function estimateCost() {
    if (!workflowId) return;
    setFormError(null);
    const { inputs } = buildInputs(schemas, values);
    try {
      if (!(await ensureSaved())) return;
      setEstimate(await workflows.estimate(workflowId, inputs));
    } catch (error) {
      setFormError(describeError(error));
    }
  }

  const status = run?.status ?? poll?.status;
  const active = phase === "starting" || phase === "running";
  const progress = Math.round((run?.progress ?? 0) * 100);

  return (
    <div className="run-panel" data-testid="run-panel">
      <form className="panel-section" onSubmit={submit} noValidate>
        <h3 className="panel-title">Run the draft</h3>
        {schemas.length === 0 ? (
          <p className="muted small" data-testid="run-no-inputs">
            This workflow takes no inputs. Add an input node to give it some.
          </p>
        ) : (
          schemas.map((schema) => (
            <SchemaField
              key={schema.name}
              schema={schema}
              value={values[schema.name]}
              onChange={(value) => setValues((current) => ({ ...current, [schema.name]: value }))}
              error={fieldErrors[schema.name]}
              hint={schema.type}
              testId={`run-input-${schema.name}`}
            />
          ))
        )}
        <ErrorMessage message={formError} testId="run-form-error" />
        <div className="button-row">
          <button type="submit" className="btn btn-primary" disabled={busy || active || !workflowId} data-testid="run-submit">
            {busy || phase === "starting" ? "Starting…" : dirty ? "Save & run" : "Run"}
          </button>
          <button type="button" className="btn" onClick={estimateCost} disabled={busy || !workflowId} data-testid="run-estimate">
            Estimate cost
          </button>
          {active && executionId && (
            <button type="button" className="btn btn-danger-quiet" onClick={() => cancelRun().catch((error) => setFormError(describeError(error)))} data-testid="run-cancel">
              Cancel
            </button>
          )}
        </div>
        {estimate && (
          <p className={`small ${estimate.sufficient ? "" : "text-error"}`} data-testid="run-estimate-result">
            About {formatCredits(estimate.credits)} credits; balance {formatCredits(estimate.balance)}.
            {!estimate.sufficient && " Not enough credits."}
          </p>
        )}
      </form>

      {(status || runError) && (
        <div className="panel-section" aria-live="polite">
          <div className="run-status-row">
            {status && (
              <span className={`status status-${status.toLowerCase()}`} data-testid="run-status" data-status={status}>
                {STATUS_TEXT[status] ?? status}
              </span>
            )}
            {executionId && (
              <Link to={`/executions/${executionId}`} className="small mono" data-testid="run-execution-link">
                {executionId}
              </Link>
            )}
          </div>
          {status && !isTerminal(status) && (
            <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={progress} data-testid="run-progress">
              <span style={{ width: `${progress}%` }} />
            </div>
          )}
          {status === "QUEUED" && typeof poll?.queuePosition === "number" && <p className="muted small">Position in queue: {poll.queuePosition}</p>}
          {active && connection === "polling" && <p className="muted small">Live updates unavailable; checking every second.</p>}
          <ErrorMessage message={runError ?? run?.error ?? (poll?.error ? poll.error.message : null)} testId="run-error" />
          {poll && isTerminal(poll.status) && (
            <>
              <dl className="facts">
                <div>
                  <dt>Credits used</dt>
                  <dd data-testid="run-credits">{formatCredits(poll.creditsUsed ?? 0)}</dd>
                </div>
                <div>
                  <dt>Duration</dt>
                  <dd>{formatDuration(durationMs(poll.startedAt, poll.completedAt))}</dd>
                </div>
              </dl>
              <h4 className="section-label">Outputs</h4>
              <OutputList outputs={poll.outputs} testIdPrefix="run-output" />
            </>
          )}
          {timings.length > 0 && (
            <>
              <h4 className="section-label">Node times</h4>
              <table className="table small" data-testid="run-node-times">
                <thead>
                  <tr>
                    <th>Node</th>
                    <th>Started</th>
                    <th>Took</th>
                  </tr>
                </thead>
                <tbody>
                  {timings.map((row) => (
                    <tr key={row.nodeId} data-node-id={row.nodeId}>
                      <td className="mono">{row.nodeId}</td>
                      <td>{row.offsetMs === null ? "—" : `+${formatDuration(row.offsetMs)}`}</td>
                      <td>{formatDuration(row.durationMs)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
        </div>
      )}
    </div>
  );
}
