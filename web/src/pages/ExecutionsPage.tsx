import { Link, useSearchParams } from "react-router-dom";
import { executions, workflows } from "../api/endpoints";
import { EmptyState, ErrorMessage, Loading } from "../components/Feedback";
import { Pager } from "../components/Pager";
import { StatusBadge } from "../components/StatusBadge";
import { useCursorPager } from "../hooks/useCursorPager";
import { useLoader } from "../hooks/useLoader";
import { durationMs, formatCredits, formatDateTime, formatDuration } from "../lib/format";

const STATUSES = ["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"];
const PAGE_SIZE = 25;

export function ExecutionsPage() {
  const [params, setParams] = useSearchParams();
  const workflowId = params.get("workflowId") ?? "";
  const status = params.get("status") ?? "";
  const pager = useCursorPager();

  const workflowOptions = useLoader(async () => (await workflows.list({ limit: 100 })).data ?? [], []);
  const list = useLoader(
    (signal) => executions.list({ workflowId: workflowId || undefined, status: status || undefined, limit: PAGE_SIZE, cursor: pager.cursor }, signal),
    [workflowId, status, pager.cursor],
  );
  const names = new Map((workflowOptions.data ?? []).map((workflow) => [workflow.id, workflow.name]));

  function setFilter(key: "workflowId" | "status", value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
    pager.restart();
  }

  const rows = list.data?.data ?? [];
  return (
    <div className="page">
      <div className="page-header">
        <h1>Executions</h1>
        <div className="page-actions filters">
          <label className="inline-field">
            <span>Workflow</span>
            <select value={workflowId} onChange={(event) => setFilter("workflowId", event.target.value)} data-testid="executions-filter-workflow">
              <option value="">All workflows</option>
              {workflowId && !names.has(workflowId) && <option value={workflowId}>{workflowId}</option>}
              {(workflowOptions.data ?? []).map((workflow) => (
                <option key={workflow.id} value={workflow.id}>
                  {workflow.name}
                </option>
              ))}
            </select>
          </label>
          <label className="inline-field">
            <span>Status</span>
            <select value={status} onChange={(event) => setFilter("status", event.target.value)} data-testid="executions-filter-status">
              <option value="">Any status</option>
              {STATUSES.map((value) => (
                <option key={value} value={value}>
                  {value.charAt(0) + value.slice(1).toLowerCase()}
                </option>
              ))}
            </select>
          </label>
          <button type="button" className="btn" onClick={list.reload} data-testid="executions-refresh">
            Refresh
          </button>
        </div>
      </div>
      {list.loading && !list.data ? (
        <Loading label="Loading executions…" />
      ) : list.error ? (
        <ErrorMessage message={list.error} onRetry={list.reload} testId="executions-error" />
      ) : rows.length === 0 ? (
        <EmptyState title={workflowId || status ? "No execution matches these filters." : "No executions yet."} testId="executions-empty">
          <p>Run a workflow from the editor, or call its API.</p>
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="executions-table">
            <thead>
              <tr>
                <th>Execution</th>
                <th>Workflow</th>
                <th>Version</th>
                <th>Status</th>
                <th>Started</th>
                <th>Duration</th>
                <th>Credits</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => {
                const id = row.executionId ?? row.id ?? "";
                return (
                  <tr key={id} data-testid="execution-row" data-execution-id={id}>
                    <td>
                      <Link to={`/executions/${id}`} className="mono" data-testid="execution-open">
                        {id}
                      </Link>
                    </td>
                    <td>{row.workflowName ?? names.get(row.workflowId) ?? <span className="mono small">{row.workflowId}</span>}</td>
                    <td>{row.version === "draft" ? "draft" : row.version ? `v${row.version}` : "—"}</td>
                    <td>
                      <StatusBadge status={row.status} />
                    </td>
                    <td className="nowrap">{formatDateTime(row.startedAt ?? row.createdAt)}</td>
                    <td>{formatDuration(durationMs(row.startedAt, row.completedAt))}</td>
                    <td>{formatCredits(row.creditsUsed)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <Pager pager={pager} nextCursor={list.data?.nextCursor} testId="executions-pagination" />
    </div>
  );
}
