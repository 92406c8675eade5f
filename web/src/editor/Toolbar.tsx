// The editor's toolbar: name, save/validation state, history, layout, validate, save, publish.

import { useReactFlow } from "@xyflow/react";
import { Link } from "react-router-dom";
import { useEditorStore } from "../stores/editorStore";
import { useGraphStore } from "../stores/graphStore";
import { publishWorkflow, saveDraft, validateGraph } from "./editorActions";

function SaveStatus() {
  const dirty = useGraphStore((state) => state.dirty);
  const saveState = useEditorStore((state) => state.saveState);
  let text = "All changes saved";
  let tone = "ok";
  if (saveState === "saving") [text, tone] = ["Saving…", "busy"];
  else if (saveState === "error" && dirty) [text, tone] = ["Not saved", "error"];
  else if (dirty) [text, tone] = ["Unsaved changes", "warn"];
  return (
    <span className={`chip chip-${tone}`} data-testid="editor-save-status" data-dirty={dirty ? "true" : "false"} aria-live="polite">
      {text}
    </span>
  );
}

function ValidationStatus() {
  const validation = useEditorStore((state) => state.validation);
  const count = useGraphStore(
    (state) => state.issues.general.length + Object.values(state.issues.byNode).reduce((sum, list) => sum + list.length, 0),
  );
  if (validation === "idle") return null;
  const [text, tone] =
    validation === "checking"
      ? ["Checking…", "busy"]
      : validation === "valid"
        ? ["Valid", "ok"]
        : validation === "invalid"
          ? [`${count} problem${count === 1 ? "" : "s"}`, "error"]
          : ["Not checked", "warn"];
  return (
    <span className={`chip chip-${tone}`} data-testid="editor-validation" data-state={validation}>
      {text}
    </span>
  );
}

export function Toolbar({ workflowId }: { workflowId: string }) {
  const name = useGraphStore((state) => state.name);
  const setName = useGraphStore((state) => state.setName);
  const canUndo = useGraphStore((state) => state.history.past.length > 0);
  const canRedo = useGraphStore((state) => state.history.future.length > 0);
  const undo = useGraphStore((state) => state.undo);
  const redo = useGraphStore((state) => state.redo);
  const autoLayout = useGraphStore((state) => state.autoLayout);
  const hasNodes = useGraphStore((state) => state.nodes.length > 0);
  const saving = useEditorStore((state) => state.saveState === "saving");
  const publishing = useEditorStore((state) => state.publishing);
  const publishedVersion = useEditorStore((state) => state.workflow?.publishedVersion);
  const setPanel = useEditorStore((state) => state.setPanel);
  const { fitView } = useReactFlow();

  return (
    <div className="editor-toolbar" role="toolbar" aria-label="Workflow editor">
      <Link to="/workflows" className="btn btn-small btn-ghost" data-testid="editor-back" aria-label="Back to workflows">
        ←
      </Link>
      <input
        className="editor-name"
        aria-label="Workflow name"
        value={name}
        placeholder="Untitled workflow"
        onChange={(event) => setName(event.target.value)}
        data-testid="editor-name"
      />
      <SaveStatus />
      <ValidationStatus />
      {publishedVersion ? <span className="chip chip-ok" data-testid="editor-published-version">v{publishedVersion} live</span> : null}
      <div className="toolbar-spacer" />
      <div className="toolbar-group" aria-label="History">
        <button type="button" className="btn btn-small" onClick={undo} disabled={!canUndo} title="Undo (Ctrl+Z)" data-testid="editor-undo">
          Undo
        </button>
        <button type="button" className="btn btn-small" onClick={redo} disabled={!canRedo} title="Redo (Ctrl+Shift+Z)" data-testid="editor-redo">
          Redo
        </button>
      </div>
      <button
        type="button"
        className="btn btn-small"
        disabled={!hasNodes}
        onClick={() => {
          autoLayout();
          requestAnimationFrame(() => void fitView({ padding: 0.2, duration: 200 }));
        }}
        data-testid="editor-layout"
      >
        Auto-layout
      </button>
      <button type="button" className="btn btn-small" onClick={() => void validateGraph()} data-testid="editor-validate">
        Validate
      </button>
      <button type="button" className="btn btn-small" onClick={() => void saveDraft()} disabled={saving} title="Save draft (Ctrl+S)" data-testid="editor-save">
        {saving ? "Saving…" : "Save"}
      </button>
      <button type="button" className="btn btn-small" onClick={() => void publishWorkflow()} disabled={publishing || saving} data-testid="editor-publish">
        {publishing ? "Publishing…" : "Publish"}
      </button>
      <button type="button" className="btn btn-small btn-primary" onClick={() => setPanel("run")} data-testid="editor-run">
        Run…
      </button>
      <Link to={`/workflows/${workflowId}/api`} className="btn btn-small" data-testid="editor-api">
        API
      </Link>
    </div>
  );
}
