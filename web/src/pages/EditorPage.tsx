// The canvas editor: palette | canvas | side panel (node settings, run, versions).

import { ReactFlowProvider, useReactFlow } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { workflows } from "../api/endpoints";
import { ErrorMessage, Loading } from "../components/Feedback";
import { Canvas } from "../editor/Canvas";
import { saveDraft, validateGraph } from "../editor/editorActions";
import { Inspector } from "../editor/Inspector";
import { Palette } from "../editor/Palette";
import { RunPanel } from "../editor/RunPanel";
import { Toolbar } from "../editor/Toolbar";
import { useEditorShortcuts } from "../editor/useEditorShortcuts";
import { VersionsPanel } from "../editor/VersionsPanel";
import { useLoader } from "../hooks/useLoader";
import { stopWatching } from "../run/runController";
import { useCatalogStore } from "../stores/catalogStore";
import { useEditorStore, type SidePanel } from "../stores/editorStore";
import { useGraphStore } from "../stores/graphStore";
import { useRunStore } from "../stores/runStore";

const AUTO_VALIDATE_MS = 800;

export function EditorPage() {
  const { id = "" } = useParams();
  return (
    <ReactFlowProvider key={id}>
      <Editor workflowId={id} />
    </ReactFlowProvider>
  );
}

function Editor({ workflowId }: { workflowId: string }) {
  const loadCatalog = useCatalogStore((state) => state.load);
  const [ready, setReady] = useState(false);

  const loaded = useLoader(async (signal) => {
    setReady(false);
    const [defs, workflow] = await Promise.all([loadCatalog(), workflows.get(workflowId)]);
    if (signal.aborted) return workflow; // left (or reloaded) meanwhile: touch no store
    const catalogError = useCatalogStore.getState().error;
    if (catalogError) throw new Error(`Could not load the node catalogue: ${catalogError}`);
    const graph = useGraphStore.getState();
    graph.setCatalog(defs);
    graph.loadWorkflow(workflow);
    useEditorStore.getState().reset();
    useEditorStore.getState().setWorkflow(workflow);
    useRunStore.getState().reset();
    setReady(true);
    return workflow;
  }, [workflowId]);

  // Leaving the editor stops following a run and forgets the graph.
  useEffect(
    () => () => {
      stopWatching();
      useRunStore.getState().reset();
      useEditorStore.getState().reset();
      useGraphStore.getState().reset();
    },
    [],
  );

  if (loaded.error) {
    return (
      <div className="page">
        <ErrorMessage message={loaded.error} onRetry={loaded.reload} testId="editor-load-error" />
        <Link to="/workflows">Back to workflows</Link>
      </div>
    );
  }
  if (!ready || loaded.loading) return <Loading label="Opening workflow…" testId="editor-loading" />;
  return <EditorLayout workflowId={workflowId} />;
}

function useAutoValidate() {
  const revision = useGraphStore((state) => state.revision);
  useEffect(() => {
    const controller = new AbortController();
    const timer = setTimeout(() => void validateGraph({ quiet: true, signal: controller.signal }), AUTO_VALIDATE_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [revision]);
}

function useWarnBeforeLeaving() {
  const dirty = useGraphStore((state) => state.dirty);
  useEffect(() => {
    if (!dirty) return;
    const onBeforeUnload = (event: BeforeUnloadEvent) => {
      event.preventDefault();
    };
    window.addEventListener("beforeunload", onBeforeUnload);
    return () => window.removeEventListener("beforeunload", onBeforeUnload);
  }, [dirty]);
}

const PANELS: { id: SidePanel; label: string }[] = [
  { id: "inspect", label: "Node" },
  { id: "run", label: "Run" },
  { id: "versions", label: "Versions" },
];

function EditorLayout({ workflowId }: { workflowId: string }) {
  const defs = useCatalogStore((state) => state.defs);
  const addNode = useGraphStore((state) => state.addNode);
  const nodeCount = useGraphStore((state) => state.nodes.length);
  const message = useEditorStore((state) => state.message);
  const setMessage = useEditorStore((state) => state.setMessage);
  const panel = useEditorStore((state) => state.panel);
  const setPanel = useEditorStore((state) => state.setPanel);
  const canvasRef = useRef<HTMLDivElement>(null);
  const { screenToFlowPosition } = useReactFlow();

  useAutoValidate();
  useWarnBeforeLeaving();
  const shortcutActions = useMemo(() => ({ save: () => void saveDraft() }), []);
  useEditorShortcuts(shortcutActions);

  const addInView = useCallback(
    (nodeType: string) => {
      const rect = canvasRef.current?.getBoundingClientRect();
      const nudge = (nodeCount % 6) * 24; // successive clicks do not stack exactly
      const position = rect
        ? screenToFlowPosition({ x: rect.left + rect.width / 2 - 110 + nudge, y: rect.top + rect.height / 3 + nudge })
        : undefined;
      addNode(nodeType, position);
      setPanel("inspect");
    },
    [addNode, nodeCount, screenToFlowPosition, setPanel],
  );

  return (
    <div className="editor" data-testid="editor">
      <Toolbar workflowId={workflowId} />
      {message && (
        <div className={`editor-message alert alert-${message.tone === "error" ? "error" : message.tone === "success" ? "success" : "info"}`} role={message.tone === "error" ? "alert" : "status"} data-testid="editor-message" data-tone={message.tone}>
          <span>{message.text}</span>
          <button type="button" className="btn btn-small btn-ghost" onClick={() => setMessage(null)} aria-label="Dismiss message" data-testid="editor-message-close">
            ×
          </button>
        </div>
      )}
      <div className="editor-body">
        <Palette defs={defs} onAdd={addInView} />
        <Canvas containerRef={canvasRef} />
        <aside className="side-panel" aria-label="Details">
          <div className="tabs" role="tablist">
            {PANELS.map((tab) => (
              <button
                key={tab.id}
                type="button"
                role="tab"
                aria-selected={panel === tab.id}
                className={panel === tab.id ? "tab active" : "tab"}
                onClick={() => setPanel(tab.id)}
                data-testid={`tab-${tab.id}`}
              >
                {tab.label}
              </button>
            ))}
          </div>
          <div className="side-panel-body" role="tabpanel">
            {panel === "inspect" && <Inspector />}
            {panel === "run" && <RunPanel />}
            {panel === "versions" && <VersionsPanel workflowId={workflowId} />}
          </div>
        </aside>
      </div>
    </div>
  );
}
