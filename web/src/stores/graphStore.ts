// The editor's graph: nodes, edges, the node catalogue they are typed by, undo history, clipboard
// and validation issues. Every change is a named action; the canvas only calls them.

import { applyEdgeChanges, applyNodeChanges, type EdgeChange, type NodeChange } from "@xyflow/react";
import { create } from "zustand";
import type { ErrorDetail, Graph, NodeDef } from "../api/types";
import { copySelection as copyNodes, pasteContent, type ClipboardContent } from "../lib/clipboard";
import { fromApiGraph, makeEdge, toApiGraph } from "../lib/graphFormat";
import { checkConnection, type Connection, type ConnectionCheck } from "../lib/graphRules";
import { canRedo, canUndo, createHistory, record, redo as redoHistory, undo as undoHistory, type History } from "../lib/history";
import { uniqueNodeId } from "../lib/ids";
import { isComfyType, widgetDefaults } from "../lib/comfyNodes";
import { autoLayout as layoutNodes } from "../lib/layout";
import { defaultValues } from "../lib/schemaFields";
import type { Catalog, FlowEdge, FlowNode, GraphSnapshot, XY } from "../lib/types";
import { mapValidationErrors, type MappedIssues } from "../lib/validationPaths";

/** Edits of one field within this window become one undo step (typing a prompt is one change). */
const COALESCE_MS = 1000;
const PASTE_OFFSET = 40;

const NO_ISSUES: MappedIssues = { byNode: {}, general: [] };

export interface GraphState {
  workflowId: string | null;
  name: string;
  description: string;
  nodes: FlowNode[];
  edges: FlowEdge[];
  catalog: Catalog;
  history: History<GraphSnapshot>;
  clipboard: ClipboardContent | null;
  pasteCount: number;
  /** Unsaved changes exist. */
  dirty: boolean;
  /** Counts every change that needs saving, name included: saving compares it to know nothing came in between. */
  edits: number;
  /** Increases on every change of content (not selection): what auto-validation watches. */
  revision: number;
  issues: MappedIssues;
  /** Why the last refused action was refused (shown as a toast on the canvas). */
  notice: string | null;
  /** The graph came without positions and was laid out with guessed node sizes: lay it out again once measured. */
  layoutPending: boolean;
  lastRecord: { key: string; at: number } | null;

  setCatalog: (defs: readonly NodeDef[]) => void;
  loadWorkflow: (workflow: { id: string; name: string; description?: string | null; graph: Graph }) => { needsLayout: boolean };
  loadGraph: (graph: Graph) => { needsLayout: boolean };
  reset: () => void;
  setName: (name: string) => void;
  setDescription: (description: string) => void;
  addNode: (nodeType: string, position?: XY) => string | null;
  connect: (connection: Connection) => ConnectionCheck;
  removeNodes: (ids: readonly string[]) => void;
  removeEdges: (ids: readonly string[]) => void;
  deleteSelection: () => void;
  onNodesChange: (changes: NodeChange<FlowNode>[]) => void;
  onEdgesChange: (changes: EdgeChange<FlowEdge>[]) => void;
  beginMove: () => void;
  setParam: (nodeId: string, name: string, value: unknown) => void;
  setLiteral: (nodeId: string, name: string, value: unknown) => void;
  setLabel: (nodeId: string, label: string) => void;
  select: (ids: readonly string[]) => void;
  undo: () => boolean;
  redo: () => boolean;
  copySelection: () => number;
  paste: () => string[];
  autoLayout: () => void;
  /** The layout `loadGraph` guessed, redone with the sizes React Flow measured; no history entry, dirty unchanged. */
  settleLayout: () => void;
  setIssues: (errors: readonly ErrorDetail[], sentGraph: Graph) => void;
  clearIssues: () => void;
  setNotice: (notice: string | null) => void;
  markSaved: (editsAtSave?: number) => void;
  getGraph: () => Graph;
  canUndo: () => boolean;
  canRedo: () => boolean;
}

type Get = () => GraphState;
type Set = (partial: Partial<GraphState> | ((state: GraphState) => Partial<GraphState>)) => void;

function snapshotOf(state: GraphState): GraphSnapshot {
  return { nodes: state.nodes, edges: state.edges };
}

/** Records the present state for undo (coalescing repeated edits of one field) and marks a change. */
function changed(get: Get, coalesceKey?: string): Pick<GraphState, "history" | "dirty" | "edits" | "revision" | "layoutPending" | "lastRecord"> {
  const state = get();
  const now = Date.now();
  const coalesce =
    coalesceKey !== undefined && state.lastRecord?.key === coalesceKey && now - state.lastRecord.at < COALESCE_MS;
  return {
    history: coalesce ? state.history : record(state.history, snapshotOf(state)),
    dirty: true,
    edits: state.edits + 1,
    revision: state.revision + 1,
    layoutPending: false,
    lastRecord: coalesceKey !== undefined ? { key: coalesceKey, at: now } : null,
  };
}

function nextPosition(nodes: readonly FlowNode[]): XY {
  if (nodes.length === 0) return { x: 80, y: 80 };
  const right = Math.max(...nodes.map((node) => node.position.x + (node.measured?.width ?? 240)));
  const top = Math.min(...nodes.map((node) => node.position.y));
  return { x: right + 60, y: top };
}

function updateNodeData(set: Set, get: Get, nodeId: string, coalesceKey: string, update: (node: FlowNode) => FlowNode): void {
  if (!get().nodes.some((node) => node.id === nodeId)) return;
  set({ ...changed(get, coalesceKey), nodes: get().nodes.map((node) => (node.id === nodeId ? update(node) : node)) });
}

function withoutKey(record: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...record };
  delete copy[key];
  return copy;
}

const initialState = () => ({
  workflowId: null,
  name: "",
  description: "",
  nodes: [] as FlowNode[],
  edges: [] as FlowEdge[],
  history: createHistory<GraphSnapshot>(),
  clipboard: null,
  pasteCount: 0,
  dirty: false,
  edits: 0,
  revision: 0,
  issues: NO_ISSUES,
  notice: null,
  layoutPending: false,
  lastRecord: null,
});

export const useGraphStore = create<GraphState>()((set, get) => ({
  ...initialState(),
  catalog: {},

  setCatalog: (defs) => {
    const catalog: Catalog = {};
    for (const def of defs) catalog[def.type] = def;
    set({ catalog });
  },

  loadWorkflow: (workflow) => {
    const { needsLayout } = get().loadGraph(workflow.graph);
    set({ workflowId: workflow.id, name: workflow.name, description: workflow.description ?? "", dirty: false });
    return { needsLayout };
  },

  loadGraph: (graph) => {
    const loaded = fromApiGraph(graph);
    const nodes = loaded.needsLayout ? layoutNodes(loaded.nodes, loaded.edges) : loaded.nodes;
    set({
      nodes,
      edges: loaded.edges,
      history: createHistory<GraphSnapshot>(),
      issues: NO_ISSUES,
      dirty: true,
      edits: get().edits + 1,
      revision: get().revision + 1,
      pasteCount: 0,
      notice: null,
      layoutPending: loaded.needsLayout,
      lastRecord: null,
    });
    return { needsLayout: loaded.needsLayout };
  },

  reset: () => set({ ...initialState(), edits: get().edits + 1, revision: get().revision + 1 }),

  setName: (name) => set({ name, dirty: true, edits: get().edits + 1 }),
  setDescription: (description) => set({ description, dirty: true, edits: get().edits + 1 }),

  addNode: (nodeType, position) => {
    const def = get().catalog[nodeType];
    if (!def) {
      set({ notice: `Unknown node type "${nodeType}".` });
      return null;
    }
    if (!def.available) {
      set({ notice: `${def.displayName} is unavailable${def.unavailableReason ? `: ${def.unavailableReason}` : "."}` });
      return null;
    }
    const nodes = get().nodes;
    const id = uniqueNodeId(nodeType, new Set(nodes.map((node) => node.id)));
    const params = defaultValues(def.params ?? []);
    // Input and output nodes are named by a `name` param; give it a readable, unique start.
    const nameParam = def.params?.find((param) => param.name === "name");
    if (nameParam && params.name === undefined && /^(input|output)\./.test(nodeType)) params.name = id;
    const node: FlowNode = {
      id,
      type: "nodeloom",
      position: position ?? nextPosition(nodes),
      selected: true,
      // A ComfyUI node starts with its widgets' defaults, as in ComfyUI's editor.
      data: { nodeType, label: "", params, literals: isComfyType(nodeType) ? widgetDefaults(def) : {} },
    };
    set({
      ...changed(get),
      nodes: [...nodes.map((other) => (other.selected ? { ...other, selected: false } : other)), node],
      notice: null,
    });
    return id;
  },

  connect: (connection) => {
    const state = get();
    const check = checkConnection({ nodes: state.nodes, edges: state.edges, catalog: state.catalog, connection });
    if (!check.ok) {
      set({ notice: check.reason });
      return check;
    }
    const edge = makeEdge({
      source: connection.source,
      sourceHandle: connection.sourceHandle ?? "",
      target: connection.target,
      targetHandle: connection.targetHandle ?? "",
    });
    const targetHandle = edge.targetHandle ?? "";
    set({
      ...changed(get),
      edges: [...state.edges.filter((existing) => existing.id !== check.replaces), edge],
      // A link replaces a literal value typed into that input.
      nodes: state.nodes.map((node) =>
        node.id === connection.target && targetHandle in node.data.literals
          ? { ...node, data: { ...node.data, literals: withoutKey(node.data.literals, targetHandle) } }
          : node,
      ),
      notice: null,
    });
    return check;
  },

  removeNodes: (ids) => {
    const doomed = new Set(ids);
    const state = get();
    if (!state.nodes.some((node) => doomed.has(node.id))) return;
    set({
      ...changed(get),
      nodes: state.nodes.filter((node) => !doomed.has(node.id)),
      edges: state.edges.filter((edge) => !doomed.has(edge.source) && !doomed.has(edge.target)),
    });
  },

  removeEdges: (ids) => {
    const doomed = new Set(ids);
    if (!get().edges.some((edge) => doomed.has(edge.id))) return;
    set({ ...changed(get), edges: get().edges.filter((edge) => !doomed.has(edge.id)) });
  },

  deleteSelection: () => {
    const state = get();
    const nodeIds = new Set(state.nodes.filter((node) => node.selected).map((node) => node.id));
    const edgeIds = new Set(state.edges.filter((edge) => edge.selected).map((edge) => edge.id));
    if (nodeIds.size === 0 && edgeIds.size === 0) return;
    set({
      ...changed(get),
      nodes: state.nodes.filter((node) => !nodeIds.has(node.id)),
      edges: state.edges.filter(
        (edge) => !edgeIds.has(edge.id) && !nodeIds.has(edge.source) && !nodeIds.has(edge.target),
      ),
    });
  },

  onNodesChange: (changes) => {
    const removes = changes.filter((change) => change.type === "remove").map((change) => change.id);
    if (removes.length > 0) get().removeNodes(removes);
    const rest = changes.filter((change) => change.type !== "remove");
    if (rest.length === 0) return;
    const moved = rest.some((change) => change.type === "position" && change.position);
    set((state) => ({
      nodes: applyNodeChanges(rest, state.nodes),
      ...(moved ? { dirty: true, edits: state.edits + 1, revision: state.revision + 1 } : {}),
    }));
  },

  onEdgesChange: (changes) => {
    const removes = changes.filter((change) => change.type === "remove").map((change) => change.id);
    if (removes.length > 0) get().removeEdges(removes);
    const rest = changes.filter((change) => change.type !== "remove");
    if (rest.length > 0) set((state) => ({ edges: applyEdgeChanges(rest, state.edges) }));
  },

  beginMove: () => set({ history: record(get().history, snapshotOf(get())), lastRecord: null }),

  setParam: (nodeId, name, value) =>
    updateNodeData(set, get, nodeId, `param:${nodeId}:${name}`, (node) => ({
      ...node,
      data: {
        ...node.data,
        params: value === undefined ? withoutKey(node.data.params, name) : { ...node.data.params, [name]: value },
      },
    })),

  setLiteral: (nodeId, name, value) =>
    updateNodeData(set, get, nodeId, `literal:${nodeId}:${name}`, (node) => ({
      ...node,
      data: {
        ...node.data,
        literals: value === undefined ? withoutKey(node.data.literals, name) : { ...node.data.literals, [name]: value },
      },
    })),

  setLabel: (nodeId, label) =>
    updateNodeData(set, get, nodeId, `label:${nodeId}`, (node) => ({ ...node, data: { ...node.data, label } })),

  select: (ids) => {
    const chosen = new Set(ids);
    set((state) => ({
      nodes: state.nodes.map((node) => (!!node.selected === chosen.has(node.id) ? node : { ...node, selected: chosen.has(node.id) })),
      edges: state.edges.map((edge) => (edge.selected ? { ...edge, selected: false } : edge)),
    }));
  },

  undo: () => {
    const state = get();
    const step = undoHistory(state.history, snapshotOf(state));
    if (!step) return false;
    set({ ...step.snapshot, history: step.history, dirty: true, edits: state.edits + 1, revision: state.revision + 1, lastRecord: null });
    return true;
  },

  redo: () => {
    const state = get();
    const step = redoHistory(state.history, snapshotOf(state));
    if (!step) return false;
    set({ ...step.snapshot, history: step.history, dirty: true, edits: state.edits + 1, revision: state.revision + 1, lastRecord: null });
    return true;
  },

  copySelection: () => {
    const state = get();
    const ids = new Set(state.nodes.filter((node) => node.selected).map((node) => node.id));
    const clipboard = copyNodes(state.nodes, state.edges, ids);
    if (!clipboard) return 0;
    set({ clipboard, pasteCount: 0 });
    return clipboard.nodes.length;
  },

  paste: () => {
    const state = get();
    if (!state.clipboard) return [];
    const count = state.pasteCount + 1;
    const offset = { x: PASTE_OFFSET * count, y: PASTE_OFFSET * count };
    const pasted = pasteContent(state.clipboard, new Set(state.nodes.map((node) => node.id)), offset);
    set({
      ...changed(get),
      nodes: [...state.nodes.map((node) => (node.selected ? { ...node, selected: false } : node)), ...pasted.nodes],
      edges: [...state.edges, ...pasted.edges],
      pasteCount: count,
    });
    return pasted.nodes.map((node) => node.id);
  },

  autoLayout: () => {
    const state = get();
    if (state.nodes.length === 0) return;
    set({ ...changed(get), nodes: layoutNodes(state.nodes, state.edges) });
  },

  settleLayout: () => {
    const state = get();
    if (!state.layoutPending) return;
    set({ layoutPending: false, nodes: state.nodes.length ? layoutNodes(state.nodes, state.edges) : state.nodes });
  },

  setIssues: (errors, sentGraph) => set({ issues: errors.length ? mapValidationErrors(errors, sentGraph) : NO_ISSUES }),
  clearIssues: () => set({ issues: NO_ISSUES }),
  setNotice: (notice) => set({ notice }),
  markSaved: (editsAtSave) => {
    if (editsAtSave === undefined || editsAtSave === get().edits) set({ dirty: false });
  },
  getGraph: () => toApiGraph(get().nodes, get().edges),
  canUndo: () => canUndo(get().history),
  canRedo: () => canRedo(get().history),
}));
