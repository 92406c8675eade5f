import { beforeEach, describe, expect, it } from "vitest";
import { useGraphStore } from "./stores/graphStore";
import { CATALOG } from "./test/fixtures";
import { createTestApi, installTestApi } from "./testApi";

beforeEach(() => {
  useGraphStore.getState().reset();
  useGraphStore.getState().setCatalog(CATALOG);
});

describe("window.__nodeloom", () => {
  it("builds a graph through the store's actions", () => {
    const api = createTestApi();
    const prompt = api.addNode("input.text", { x: 0, y: 0 });
    const gen = api.addNode("generate.flux_2_pro", { x: 300, y: 0 });
    expect(api.canConnect(prompt, "text", gen, "seed")).toMatchObject({ ok: false });
    expect(api.connect(prompt, "text", gen, "seed")).toBe(false);
    expect(api.lastError()).toMatch(/cannot feed/);
    expect(api.connect(prompt, "text", gen, "prompt")).toBe(true);
    api.setParam(gen, "steps", 10);
    api.setInput(gen, "seed", 7);
    api.setLabel(gen, "Hero");
    expect(api.getGraph().nodes[1]).toEqual({
      id: gen,
      type: "generate.flux_2_pro",
      params: { aspectRatio: "1:1", steps: 10, guidance: 3.5, safety: true },
      inputs: { seed: 7, prompt: { from: prompt, output: "text" } },
      position: { x: 300, y: 0 },
      label: "Hero",
    });
    expect(api.isDirty()).toBe(true);
  });

  it("throws for a node type it cannot add, and supports undo, copy and paste", () => {
    const api = createTestApi();
    expect(() => api.addNode("bogus.type")).toThrow(/Unknown node type/);
    const a = api.addNode("input.text");
    api.select([a]);
    expect(api.copy()).toBe(1);
    expect(api.paste()).toEqual(["text_2"]);
    expect(api.undo()).toBe(true);
    expect(api.getGraph().nodes).toHaveLength(1);
    expect(api.redo()).toBe(true);
    api.removeEdge("x", "y", "z", "w");
    api.clear();
    expect(api.getGraph()).toEqual({ nodes: [] });
  });

  it("installs itself on a window", () => {
    const target = {} as Window;
    installTestApi(target);
    expect(typeof target.__nodeloom?.addNode).toBe("function");
  });
});
