// `window.__nodeloom`: the graph and run stores' actions for browser tests, so a test can build a
// graph without pointer gestures. It calls the same named actions the canvas calls.

import type { Graph } from "./api/types";
import { checkConnection, type ConnectionCheck } from "./lib/graphRules";
import type { RunSnapshot } from "./lib/runState";
import type { XY } from "./lib/types";
import type { MappedIssues } from "./lib/validationPaths";
import { useCatalogStore } from "./stores/catalogStore";
import { useGraphStore } from "./stores/graphStore";
import { useRunStore } from "./stores/runStore";

export interface NodeloomTestApi {
  /** Adds a node of `type`; returns its id. Throws for an unknown or unavailable type. */
  addNode: (type: string, position?: XY) => string;
  /** Links an output to an input; false (with `lastError()`) when the types or graph refuse it. */
  connect: (sourceId: string, sourceHandle: string, targetId: string, targetHandle: string) => boolean;
  canConnect: (sourceId: string, sourceHandle: string, targetId: string, targetHandle: string) => ConnectionCheck;
  removeNode: (id: string) => void;
  removeEdge: (sourceId: string, sourceHandle: string, targetId: string, targetHandle: string) => void;
  setParam: (nodeId: string, name: string, value: unknown) => void;
  setInput: (nodeId: string, name: string, value: unknown) => void;
  setLabel: (nodeId: string, label: string) => void;
  setName: (name: string) => void;
  select: (ids: string[]) => void;
  deleteSelection: () => void;
  copy: () => number;
  paste: () => string[];
  undo: () => boolean;
  redo: () => boolean;
  autoLayout: () => void;
  /** The graph in the API's format, exactly as Save would send it. */
  getGraph: () => Graph;
  loadGraph: (graph: Graph) => void;
  clear: () => void;
  isDirty: () => boolean;
  getWorkflowId: () => string | null;
  getIssues: () => MappedIssues;
  lastError: () => string | null;
  nodeTypes: () => string[];
  getRun: () => { executionId: string | null; phase: string; run: RunSnapshot | null };
}

function edgeIdFor(sourceId: string, sourceHandle: string, targetId: string, targetHandle: string): string {
  return `${sourceId}:${sourceHandle}->${targetId}:${targetHandle}`;
}

export function createTestApi(): NodeloomTestApi {
  const graph = () => useGraphStore.getState();
  return {
    addNode: (type, position) => {
      const id = graph().addNode(type, position);
      if (id === null) throw new Error(graph().notice ?? `Could not add "${type}".`);
      return id;
    },
    connect: (sourceId, sourceHandle, targetId, targetHandle) =>
      graph().connect({ source: sourceId, sourceHandle, target: targetId, targetHandle }).ok,
    canConnect: (sourceId, sourceHandle, targetId, targetHandle) => {
      const { nodes, edges, catalog } = graph();
      return checkConnection({ nodes, edges, catalog, connection: { source: sourceId, sourceHandle, target: targetId, targetHandle } });
    },
    removeNode: (id) => graph().removeNodes([id]),
    removeEdge: (sourceId, sourceHandle, targetId, targetHandle) =>
      graph().removeEdges([edgeIdFor(sourceId, sourceHandle, targetId, targetHandle)]),
    setParam: (nodeId, name, value) => graph().setParam(nodeId, name, value),
    setInput: (nodeId, name, value) => graph().setLiteral(nodeId, name, value),
    setLabel: (nodeId, label) => graph().setLabel(nodeId, label),
    setName: (name) => graph().setName(name),
    select: (ids) => graph().select(ids),
    deleteSelection: () => graph().deleteSelection(),
    copy: () => graph().copySelection(),
    paste: () => graph().paste(),
    undo: () => graph().undo(),
    redo: () => graph().redo(),
    autoLayout: () => graph().autoLayout(),
    getGraph: () => graph().getGraph(),
    loadGraph: (value) => {
      graph().loadGraph(value);
    },
    clear: () => graph().loadGraph({ nodes: [] }),
    isDirty: () => graph().dirty,
    getWorkflowId: () => graph().workflowId,
    getIssues: () => graph().issues,
    lastError: () => graph().notice,
    nodeTypes: () => useCatalogStore.getState().defs.map((def) => def.type),
    getRun: () => {
      const { executionId, phase, run } = useRunStore.getState();
      return { executionId, phase, run };
    },
  };
}

declare global {
  interface Window {
    __nodeloom?: NodeloomTestApi;
  }
}

export function installTestApi(target: Window = window): void {
  target.__nodeloom = createTestApi();
}
