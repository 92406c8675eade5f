// The React Flow canvas. Thin: it renders store state and forwards every gesture to a named action.

import {
  Background,
  BackgroundVariant,
  Controls,
  MiniMap,
  ReactFlow,
  useNodesInitialized,
  useReactFlow,
  type Connection as FlowConnection,
  type Edge,
  type IsValidConnection,
} from "@xyflow/react";
import { useCallback, useEffect, type DragEvent, type Ref } from "react";
import { checkConnection } from "../lib/graphRules";
import type { FlowNode } from "../lib/types";
import { useGraphStore } from "../stores/graphStore";
import { useRunStore } from "../stores/runStore";
import { FlowNodeView } from "./FlowNodeView";

export const PALETTE_MIME = "application/x-nodeloom-node-type";

const nodeTypes = { nodeloom: FlowNodeView };

function toConnection(link: FlowConnection | Edge) {
  return { source: link.source, sourceHandle: link.sourceHandle, target: link.target, targetHandle: link.targetHandle };
}

export function Canvas({ containerRef }: { containerRef?: Ref<HTMLDivElement> }) {
  const nodes = useGraphStore((state) => state.nodes);
  const edges = useGraphStore((state) => state.edges);
  const onNodesChange = useGraphStore((state) => state.onNodesChange);
  const onEdgesChange = useGraphStore((state) => state.onEdgesChange);
  const connect = useGraphStore((state) => state.connect);
  const beginMove = useGraphStore((state) => state.beginMove);
  const addNode = useGraphStore((state) => state.addNode);
  const notice = useGraphStore((state) => state.notice);
  const setNotice = useGraphStore((state) => state.setNotice);
  const running = useRunStore((state) => state.phase === "running");
  const { screenToFlowPosition, fitView } = useReactFlow<FlowNode>();
  const layoutPending = useGraphStore((state) => state.layoutPending);
  const settleLayout = useGraphStore((state) => state.settleLayout);
  const measured = useNodesInitialized();

  // A graph that came without positions (an import) was laid out with guessed sizes: redo it with real ones.
  useEffect(() => {
    if (!layoutPending || !measured) return;
    settleLayout();
    requestAnimationFrame(() => void fitView({ padding: 0.2, maxZoom: 1.2 }));
  }, [layoutPending, measured, settleLayout, fitView]);

  const isValidConnection: IsValidConnection = useCallback((link) => {
    const { nodes: current, edges: currentEdges, catalog } = useGraphStore.getState();
    return checkConnection({ nodes: current, edges: currentEdges, catalog, connection: toConnection(link) }).ok;
  }, []);

  const onConnect = useCallback((link: FlowConnection) => void connect(toConnection(link)), [connect]);

  const onDragOver = useCallback((event: DragEvent) => {
    if (!event.dataTransfer.types.includes(PALETTE_MIME)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  }, []);

  const onDrop = useCallback(
    (event: DragEvent) => {
      const nodeType = event.dataTransfer.getData(PALETTE_MIME);
      if (!nodeType) return;
      event.preventDefault();
      addNode(nodeType, screenToFlowPosition({ x: event.clientX, y: event.clientY }));
    },
    [addNode, screenToFlowPosition],
  );

  useEffect(() => {
    if (!notice) return;
    const timer = setTimeout(() => setNotice(null), 4000);
    return () => clearTimeout(timer);
  }, [notice, setNotice]);

  return (
    <div ref={containerRef} className={running ? "editor-canvas is-running" : "editor-canvas"} data-testid="canvas" onDragOver={onDragOver} onDrop={onDrop}>
      <ReactFlow<FlowNode>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        isValidConnection={isValidConnection}
        onNodeDragStart={beginMove}
        deleteKeyCode={null}
        selectionKeyCode="Shift"
        multiSelectionKeyCode={["Meta", "Control"]}
        fitView
        fitViewOptions={{ padding: 0.2, maxZoom: 1.2 }}
        minZoom={0.2}
        maxZoom={2}
      >
        <Background variant={BackgroundVariant.Dots} gap={18} size={1} />
        <Controls showInteractive={false} />
        <MiniMap pannable zoomable ariaLabel="Graph overview" />
      </ReactFlow>
      {nodes.length === 0 && (
        <div className="canvas-empty" data-testid="canvas-empty">
          Drag a node from the palette, or click one to add it.
        </div>
      )}
      {notice && (
        <div className="canvas-notice" role="status" data-testid="canvas-notice">
          {notice}
        </div>
      )}
    </div>
  );
}
