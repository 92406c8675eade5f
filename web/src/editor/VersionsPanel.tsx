// Published versions of the workflow; any one can be opened into the draft (then saved as usual).

import { useState } from "react";
import { describeError } from "../api/client";
import { workflows } from "../api/endpoints";
import type { WorkflowVersion } from "../api/types";
import { ConfirmButton } from "../components/ConfirmButton";
import { EmptyState, ErrorMessage, Loading } from "../components/Feedback";
import { useLoader } from "../hooks/useLoader";
import { formatDateTime } from "../lib/format";
import { useEditorStore } from "../stores/editorStore";
import { useGraphStore } from "../stores/graphStore";

export function VersionsPanel({ workflowId }: { workflowId: string }) {
  const publishedVersion = useEditorStore((state) => state.workflow?.publishedVersion);
  const setMessage = useEditorStore((state) => state.setMessage);
  const loadGraph = useGraphStore((state) => state.loadGraph);
  const [error, setError] = useState<string | null>(null);
  const versions = useLoader(async () => {
    const answer = await workflows.versions(workflowId);
    const list: WorkflowVersion[] = Array.isArray(answer?.data) ? answer.data : [];
    return [...list].sort((a, b) => b.version - a.version);
  }, [workflowId, publishedVersion]);

  async function restore(version: number) {
    setError(null);
    try {
      const snapshot = await workflows.version(workflowId, version);
      if (!snapshot.graph) throw new Error(`Version ${version} came without a graph.`);
      loadGraph(snapshot.graph);
      setMessage({ tone: "info", text: `Version ${version} opened in the draft. Save to keep it.` });
    } catch (reason) {
      setError(describeError(reason));
    }
  }

  return (
    <div className="panel-section" data-testid="versions-panel">
      <h3 className="panel-title">Published versions</h3>
      <ErrorMessage message={error} testId="versions-error" />
      {versions.loading && !versions.data ? (
        <Loading label="Loading versions…" />
      ) : versions.error ? (
        <ErrorMessage message={versions.error} onRetry={versions.reload} testId="versions-load-error" />
      ) : !versions.data || versions.data.length === 0 ? (
        <EmptyState title="Nothing published yet." testId="versions-empty">
          <p>Publish to freeze the draft as version 1; API calls run the latest published version.</p>
        </EmptyState>
      ) : (
        <ul className="version-list" data-testid="versions-list">
          {versions.data.map((version) => (
            <li key={version.version} data-testid="version-row" data-version={version.version}>
              <div>
                <strong>v{version.version}</strong>
                {version.version === publishedVersion && <span className="badge badge-ok">latest</span>}
                <div className="muted small">{formatDateTime(version.publishedAt)}</div>
              </div>
              <ConfirmButton label="Open in draft" confirmLabel="Replace draft" onConfirm={() => restore(version.version)} testId="version-restore" />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
