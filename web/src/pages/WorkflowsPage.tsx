import { useEffect, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { describeError } from "../api/client";
import { workflows as workflowsApi } from "../api/endpoints";
import type { Workflow } from "../api/types";
import { ComfyImportDialog } from "../components/ComfyImportDialog";
import { ConfirmButton } from "../components/ConfirmButton";
import { EmptyState, ErrorMessage, Loading } from "../components/Feedback";
import { Pager } from "../components/Pager";
import { useCursorPager } from "../hooks/useCursorPager";
import { useLoader } from "../hooks/useLoader";
import { formatDateTime } from "../lib/format";

const PAGE_SIZE = 20;

export function WorkflowsPage() {
  const [params, setParams] = useSearchParams();
  const query = params.get("q") ?? "";
  const [search, setSearch] = useState(query);
  const pager = useCursorPager();
  const navigate = useNavigate();
  const [actionError, setActionError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [importing, setImporting] = useState(false);

  // The URL holds the query (shareable, survives reload); typing updates it after a short pause.
  useEffect(() => {
    const timer = setTimeout(() => {
      if (search === query) return;
      setParams(search ? { q: search } : {}, { replace: true });
      pager.restart();
    }, 300);
    return () => clearTimeout(timer);
  }, [search, query, setParams, pager.restart]);

  const list = useLoader(
    (signal) => workflowsApi.list({ q: query || undefined, limit: PAGE_SIZE, cursor: pager.cursor }, signal),
    [query, pager.cursor],
  );

  async function createWorkflow() {
    setCreating(true);
    setActionError(null);
    try {
      const created = await workflowsApi.create({ name: "Untitled workflow", description: "", graph: { nodes: [] } });
      navigate(`/workflows/${created.id}`);
    } catch (error) {
      setActionError(describeError(error));
      setCreating(false);
    }
  }

  async function duplicate(workflow: Workflow) {
    setActionError(null);
    try {
      const full = workflow.graph ? workflow : await workflowsApi.get(workflow.id);
      await workflowsApi.create({ name: `Copy of ${full.name}`, description: full.description ?? "", graph: full.graph });
      list.reload();
    } catch (error) {
      setActionError(describeError(error));
    }
  }

  async function remove(workflow: Workflow) {
    setActionError(null);
    try {
      await workflowsApi.remove(workflow.id);
      list.reload();
    } catch (error) {
      setActionError(describeError(error));
    }
  }

  const rows = list.data?.data ?? [];

  return (
    <div className="page">
      <div className="page-header">
        <h1>Workflows</h1>
        <div className="page-actions">
          <input
            type="search"
            className="search"
            placeholder="Search by name"
            aria-label="Search workflows"
            value={search}
            onChange={(event) => setSearch(event.target.value)}
            data-testid="workflow-search"
          />
          <button type="button" className="btn" onClick={() => setImporting(true)} data-testid="workflow-import-comfyui">
            Import ComfyUI workflow
          </button>
          <button type="button" className="btn btn-primary" onClick={createWorkflow} disabled={creating} data-testid="workflow-new">
            {creating ? "Creating…" : "New workflow"}
          </button>
        </div>
      </div>
      <ErrorMessage message={actionError} testId="workflow-action-error" />
      {list.loading && !list.data ? (
        <Loading label="Loading workflows…" />
      ) : list.error ? (
        <ErrorMessage message={list.error} onRetry={list.reload} testId="workflow-list-error" />
      ) : rows.length === 0 ? (
        <EmptyState title={query ? `No workflow matches “${query}”.` : "No workflows yet."} testId="workflow-empty">
          {!query && <p>Create one to start building a graph.</p>}
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="workflow-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Published</th>
                <th>Updated</th>
                <th className="actions-col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((workflow) => (
                <tr key={workflow.id} data-testid="workflow-row" data-workflow-id={workflow.id}>
                  <td>
                    <Link to={`/workflows/${workflow.id}`} className="row-title" data-testid="workflow-open">
                      {workflow.name || "Untitled"}
                    </Link>
                    {workflow.description && <div className="muted small">{workflow.description}</div>}
                    <div className="muted small mono">{workflow.id}</div>
                  </td>
                  <td>{workflow.publishedVersion ? <span className="badge badge-ok">v{workflow.publishedVersion}</span> : <span className="muted">draft only</span>}</td>
                  <td className="nowrap">{formatDateTime(workflow.updatedAt)}</td>
                  <td className="actions-col">
                    <Link to={`/workflows/${workflow.id}/api`} className="btn btn-small" data-testid="workflow-api">
                      API
                    </Link>
                    <button type="button" className="btn btn-small" onClick={() => duplicate(workflow)} data-testid="workflow-duplicate">
                      Duplicate
                    </button>
                    <ConfirmButton label="Delete" confirmLabel="Delete for good" onConfirm={() => remove(workflow)} testId="workflow-delete" ariaLabel={`Delete ${workflow.name}`} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager pager={pager} nextCursor={list.data?.nextCursor} testId="workflow-pagination" />
      {importing && (
        <ComfyImportDialog
          onClose={() => {
            setImporting(false);
            list.reload();
          }}
        />
      )}
    </div>
  );
}
