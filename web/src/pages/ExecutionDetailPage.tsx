import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { describeError } from "../api/client";
import { executions } from "../api/endpoints";
import type { NodeResult } from "../api/types";
import { Deliveries } from "../components/Deliveries";
import { ErrorMessage, Loading } from "../components/Feedback";
import { OutputList } from "../components/OutputValue";
import { StatusBadge } from "../components/StatusBadge";
import { useLoader } from "../hooks/useLoader";
import { durationMs, formatCredits, formatDateTime, formatDuration } from "../lib/format";
import { errorText, isTerminal } from "../lib/runState";

const REFRESH_MS = 2000;

function sortByStart(entries: [string, NodeResult][]): [string, NodeResult][] {
  return [...entries].sort(([, a], [, b]) => (a.startedAt ?? "~").localeCompare(b.startedAt ?? "~"));
}

export function ExecutionDetailPage() {
  const { id = "" } = useParams();
  const poll = useLoader((signal) => executions.poll(id, signal), [id]);
  const [actionError, setActionError] = useState<string | null>(null);
  const [openNode, setOpenNode] = useState<string | null>(null);
  const status = poll.data?.status;

  // While it runs, refresh.
  useEffect(() => {
    if (!status || isTerminal(status)) return;
    const timer = setTimeout(poll.reload, REFRESH_MS);
    return () => clearTimeout(timer);
  }, [status, poll.data, poll.reload]);

  if (poll.loading && !poll.data) return <Loading label="Loading execution…" />;
  if (!poll.data) {
    return (
      <div className="page">
        <ErrorMessage message={poll.error ?? "Execution not found."} onRetry={poll.reload} testId="execution-error" />
        <Link to="/executions">All executions</Link>
      </div>
    );
  }
  const execution = poll.data;
  const nodeEntries = sortByStart(Object.entries(execution.nodes ?? {}));
  const total = durationMs(execution.startedAt, execution.completedAt);

  return (
    <div className="page" data-testid="execution-detail">
      <div className="page-header">
        <div>
          <h1 className="mono">{execution.executionId}</h1>
          <div className="muted small">
            <Link to={`/workflows/${execution.workflowId}`}>{execution.workflowId}</Link>
            {" · "}
            {execution.version === "draft" ? "draft" : execution.version ? `version ${execution.version}` : ""}
          </div>
        </div>
        <div className="page-actions">
          <StatusBadge status={execution.status} testId="execution-status" />
          {!isTerminal(execution.status) && (
            <button
              type="button"
              className="btn btn-danger-quiet"
              onClick={async () => {
                setActionError(null);
                try {
                  await executions.cancel(execution.executionId);
                  poll.reload();
                } catch (error) {
                  setActionError(describeError(error));
                }
              }}
              data-testid="execution-cancel"
            >
              Cancel
            </button>
          )}
        </div>
      </div>
      <ErrorMessage message={actionError} testId="execution-action-error" />
      {poll.error && <ErrorMessage message={`Could not refresh: ${poll.error}`} testId="execution-refresh-error" />}
      {execution.error && (
        <div className="alert alert-error" role="alert" data-testid="execution-failure">
          <strong>{execution.error.code}</strong> {execution.error.message}
          {execution.error.nodeId && <> (node <code>{execution.error.nodeId}</code>)</>}
        </div>
      )}

      <section className="card">
        <dl className="facts facts-wide">
          <div>
            <dt>Created</dt>
            <dd>{formatDateTime(execution.createdAt)}</dd>
          </div>
          <div>
            <dt>Started</dt>
            <dd>{formatDateTime(execution.startedAt)}</dd>
          </div>
          <div>
            <dt>Completed</dt>
            <dd>{formatDateTime(execution.completedAt)}</dd>
          </div>
          <div>
            <dt>Duration</dt>
            <dd>{formatDuration(total)}</dd>
          </div>
          <div>
            <dt>Credits used</dt>
            <dd data-testid="execution-credits">{formatCredits(execution.creditsUsed ?? 0)}</dd>
          </div>
          {!isTerminal(execution.status) && (
            <div>
              <dt>Progress</dt>
              <dd>{Math.round((execution.progress ?? 0) * 100)}%</dd>
            </div>
          )}
        </dl>
      </section>

      <section className="card">
        <div className="card-header">
          <h2>Outputs</h2>
        </div>
        <OutputList outputs={execution.outputs} testIdPrefix="execution-output" />
      </section>

      <section className="card">
        <div className="card-header">
          <h2>Nodes</h2>
        </div>
        {nodeEntries.length === 0 ? (
          <p className="muted">No node has run yet.</p>
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="execution-nodes">
              <thead>
                <tr>
                  <th>Node</th>
                  <th>Status</th>
                  <th>Started</th>
                  <th>Time</th>
                  <th>Timeline</th>
                  <th>Credits</th>
                  <th className="actions-col">
                    <span className="visually-hidden">Outputs</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {nodeEntries.map(([nodeId, node]) => {
                  const ms = durationMs(node.startedAt, node.completedAt);
                  const offset = durationMs(execution.startedAt, node.startedAt);
                  const span = total && total > 0 ? total : null;
                  return (
                    <NodeRow
                      key={nodeId}
                      nodeId={nodeId}
                      node={node}
                      ms={ms}
                      left={span && offset !== null ? (offset / span) * 100 : 0}
                      width={span && ms !== null ? Math.max(1, (ms / span) * 100) : 0}
                      open={openNode === nodeId}
                      onToggle={() => setOpenNode(openNode === nodeId ? null : nodeId)}
                    />
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section className="card">
        <div className="card-header">
          <h2>Callback deliveries</h2>
        </div>
        <Deliveries executionId={execution.executionId} />
      </section>
    </div>
  );
}

function NodeRow(props: { nodeId: string; node: NodeResult; ms: number | null; left: number; width: number; open: boolean; onToggle: () => void }) {
  const { nodeId, node, ms, left, width, open, onToggle } = props;
  const hasOutputs = node.outputs && Object.keys(node.outputs).length > 0;
  const error = errorText(node.error);
  return (
    <>
      <tr data-testid="execution-node-row" data-node-id={nodeId}>
        <td>
          <span className="mono">{nodeId}</span>
          {node.type && <div className="muted small">{node.type}</div>}
          {error && <div className="small text-error">{error}</div>}
        </td>
        <td>
          <StatusBadge status={node.status} />
          {node.cached && <span className="badge badge-cached">cached</span>}
        </td>
        <td className="nowrap small">{formatDateTime(node.startedAt)}</td>
        <td>{formatDuration(ms)}</td>
        <td className="timeline-cell">
          <div className="timeline" aria-hidden="true">
            <span style={{ left: `${left}%`, width: `${width}%` }} />
          </div>
        </td>
        <td>{formatCredits(node.credits)}</td>
        <td className="actions-col">
          {hasOutputs && (
            <button type="button" className="btn btn-small" aria-expanded={open} onClick={onToggle} data-testid="execution-node-toggle">
              {open ? "Hide outputs" : "Outputs"}
            </button>
          )}
        </td>
      </tr>
      {open && hasOutputs && (
        <tr className="detail-row">
          <td colSpan={7}>
            <OutputList outputs={node.outputs} testIdPrefix={`node-output-${nodeId}`} />
          </td>
        </tr>
      )}
    </>
  );
}
