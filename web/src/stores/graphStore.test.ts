import { beforeEach, describe, expect, it, vi } from "vitest";
import { CATALOG } from "../test/fixtures";
import { useGraphStore } from "./graphStore";

const store = () => useGraphStore.getState();

beforeEach(() => {
  vi.useRealTimers();
  store().reset();
  store().setCatalog(CATALOG);
});

function buildChain() {
  const prompt = store().addNode("input.text", { x: 0, y: 0 })!;
  const gen = store().addNode("generate.flux_2_pro", { x: 300, y: 0 })!;
  const out = store().addNode("output.image", { x: 600, y: 0 })!;
  expect(store().connect({ source: prompt, sourceHandle: "text", target: gen, targetHandle: "prompt" }).ok).toBe(true);
  expect(store().connect({ source: gen, sourceHandle: "image", target: out, targetHandle: "image" }).ok).toBe(true);
  return { prompt, gen, out };
}

describe("graph store", () => {
  it("adds typed nodes with schema defaults, readable ids and the new one selected", () => {
    const id = store().addNode("generate.flux_2_pro", { x: 10, y: 20 });
    expect(id).toBe("flux_2_pro");
    const node = store().nodes[0];
    expect(node.position).toEqual({ x: 10, y: 20 });
    expect(node.selected).toBe(true);
    expect(node.data.params).toEqual({ aspectRatio: "1:1", steps: 28, guidance: 3.5, safety: true });
    expect(store().addNode("generate.flux_2_pro")).toBe("flux_2_pro_2");
    expect(store().nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["flux_2_pro_2"]);
    expect(store().dirty).toBe(true);
  });

  it("names input and output nodes after their id", () => {
    expect(store().addNode("input.text")).toBe("text");
    expect(store().nodes[0].data.params.name).toBe("text");
  });

  it("refuses unknown and unavailable node types with a notice", () => {
    expect(store().addNode("nope.nothing")).toBeNull();
    expect(store().notice).toMatch(/Unknown node type/);
    expect(store().addNode("upscale.local_gpu")).toBeNull();
    expect(store().notice).toMatch(/No GPU worker/);
    expect(store().nodes).toHaveLength(0);
  });

  it("connects compatible ports, refuses incompatible ones, and serialises the graph", () => {
    const { prompt, gen } = buildChain();
    const refused = store().connect({ source: prompt, sourceHandle: "text", target: "image", targetHandle: "image" });
    expect(refused.ok).toBe(false);
    expect(store().edges).toHaveLength(2);
    const graph = store().getGraph();
    expect(graph.nodes.map((n) => n.id)).toEqual(["text", "flux_2_pro", "image"]);
    expect(graph.nodes[1].inputs).toEqual({ prompt: { from: prompt, output: "text" } });
    expect(graph.nodes[2].inputs).toEqual({ image: { from: gen, output: "image" } });
  });

  it("replaces a literal and an earlier link when an input gets a new link", () => {
    const gen = store().addNode("generate.flux_2_pro")!;
    const a = store().addNode("input.text")!;
    const b = store().addNode("input.text")!;
    store().setLiteral(gen, "prompt", "typed");
    store().connect({ source: a, sourceHandle: "text", target: gen, targetHandle: "prompt" });
    expect(store().nodes.find((n) => n.id === gen)!.data.literals).toEqual({});
    store().connect({ source: b, sourceHandle: "text", target: gen, targetHandle: "prompt" });
    expect(store().edges.map((e) => e.source)).toEqual([b]);
  });

  it("undoes and redoes structural changes", () => {
    buildChain();
    expect(store().edges).toHaveLength(2);
    expect(store().undo()).toBe(true);
    expect(store().edges).toHaveLength(1);
    expect(store().undo()).toBe(true);
    expect(store().edges).toHaveLength(0);
    expect(store().redo()).toBe(true);
    expect(store().edges).toHaveLength(1);
    store().removeNodes(["flux_2_pro"]);
    expect(store().nodes).toHaveLength(2);
    expect(store().edges).toHaveLength(0);
    expect(store().canRedo()).toBe(false);
    store().undo();
    expect(store().nodes).toHaveLength(3);
    expect(store().edges).toHaveLength(1);
  });

  it("makes one undo step of quick edits to one field", () => {
    const gen = store().addNode("generate.flux_2_pro")!;
    store().setParam(gen, "steps", 1);
    store().setParam(gen, "steps", 12);
    store().setParam(gen, "steps", 40);
    store().undo();
    expect(store().nodes[0].data.params.steps).toBe(28);
    store().setParam(gen, "steps", undefined);
    expect("steps" in store().nodes[0].data.params).toBe(false);
  });

  it("separates edits of one field that are far apart in time", () => {
    vi.useFakeTimers();
    const gen = store().addNode("generate.flux_2_pro")!;
    store().setLabel(gen, "A");
    vi.advanceTimersByTime(2000);
    store().setLabel(gen, "AB");
    store().undo();
    expect(store().nodes[0].data.label).toBe("A");
  });

  it("deletes the selection with its edges", () => {
    const { gen } = buildChain();
    store().select([gen]);
    store().deleteSelection();
    expect(store().nodes.map((n) => n.id)).toEqual(["text", "image"]);
    expect(store().edges).toEqual([]);
  });

  it("copies and pastes a selection with its inner links", () => {
    const { prompt, gen } = buildChain();
    store().select([prompt, gen]);
    expect(store().copySelection()).toBe(2);
    const pasted = store().paste();
    expect(pasted).toEqual(["text_2", "flux_2_pro_2"]);
    expect(store().edges.map((e) => e.id)).toContain("text_2:text->flux_2_pro_2:prompt");
    expect(store().nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(pasted);
    const second = store().paste();
    expect(second).toEqual(["text_3", "flux_2_pro_3"]);
    const first = store().nodes.find((n) => n.id === "text_2")!.position;
    const again = store().nodes.find((n) => n.id === "text_3")!.position;
    expect(again.x).toBeGreaterThan(first.x);
  });

  it("lays the graph out left to right, undoably", () => {
    const { prompt, gen, out } = buildChain();
    store().onNodesChange([{ type: "position", id: out, position: { x: -500, y: 0 } }]);
    store().autoLayout();
    const x = (id: string) => store().nodes.find((n) => n.id === id)!.position.x;
    expect(x(prompt)).toBeLessThan(x(gen));
    expect(x(gen)).toBeLessThan(x(out));
    store().undo();
    expect(x(out)).toBe(-500);
  });

  it("pins validation errors on the nodes they name", () => {
    buildChain();
    const graph = store().getGraph();
    store().setIssues(
      [
        { path: "nodes[1].params.steps", message: "at most 50" },
        { path: "nodes", message: "too many nodes" },
      ],
      graph,
    );
    expect(store().issues.byNode.flux_2_pro[0].field).toEqual({ kind: "params", name: "steps" });
    expect(store().issues.general).toHaveLength(1);
    store().clearIssues();
    expect(store().issues.byNode).toEqual({});
  });

  it("loads a workflow clean, and tracks whether a save saw the latest edit", () => {
    store().loadWorkflow({
      id: "wf_1",
      name: "Fox",
      graph: { nodes: [{ id: "p", type: "input.text", params: { name: "p" }, position: { x: 0, y: 0 } }] },
    });
    expect(store()).toMatchObject({ workflowId: "wf_1", name: "Fox", dirty: false });
    expect(store().canUndo()).toBe(false);
    store().setName("Fox 2");
    const atSave = store().edits;
    store().setParam("p", "default", "x");
    store().markSaved(atSave);
    expect(store().dirty).toBe(true);
    store().markSaved(store().edits);
    expect(store().dirty).toBe(false);
  });

  it("records one undo step for a drag and marks moves dirty", () => {
    const id = store().addNode("input.text", { x: 0, y: 0 })!;
    store().markSaved();
    store().beginMove();
    store().onNodesChange([{ type: "position", id, position: { x: 50, y: 0 }, dragging: true }]);
    store().onNodesChange([{ type: "position", id, position: { x: 90, y: 0 }, dragging: false }]);
    expect(store().dirty).toBe(true);
    store().undo();
    expect(store().nodes[0].position).toEqual({ x: 0, y: 0 });
  });

  it("does not dirty the graph for selection changes, but removes via changes with history", () => {
    const id = store().addNode("input.text")!;
    store().markSaved();
    store().onNodesChange([{ type: "select", id, selected: false }]);
    expect(store().dirty).toBe(false);
    store().onNodesChange([{ type: "remove", id }]);
    expect(store().nodes).toHaveLength(0);
    store().undo();
    expect(store().nodes).toHaveLength(1);
  });
});
