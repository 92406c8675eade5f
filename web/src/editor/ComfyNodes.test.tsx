// @vitest-environment jsdom
// ComfyUI nodes on the canvas: ports typed as the catalogue says (MODEL, LATENT, IMAGE batches), widgets edited
// in place (combos as selects), a linked widget shown as linked, and live progress with ComfyUI's step counter.
import { act, cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { configureClient } from "../api/client";
import type { Workflow } from "../api/types";
import { EditorPage } from "../pages/EditorPage";
import { useCatalogStore } from "../stores/catalogStore";
import { useGraphStore } from "../stores/graphStore";
import { useRunStore } from "../stores/runStore";
import { COMFY_CATALOG, IMPORTED } from "../test/comfyFixtures";
import { installFetch, type FakeRequest } from "../test/http";

beforeAll(() => {
  globalThis.ResizeObserver ??= class {
    observe() {}
    unobserve() {}
    disconnect() {}
  } as unknown as typeof ResizeObserver;
  globalThis.DOMMatrixReadOnly ??= class {
    m22 = 1;
  } as unknown as typeof DOMMatrixReadOnly;
});

afterEach(() => {
  cleanup();
  configureClient({ fetchImpl: null });
  useCatalogStore.setState({ status: "idle", defs: [], error: null });
});

const WORKFLOW: Workflow = {
  ...IMPORTED,
  graph: {
    nodes: [
      ...IMPORTED.graph.nodes,
      { id: "ck", type: "comfyui.CheckpointLoaderSimple", inputs: { ckpt_name: "sd15.safetensors" }, label: "Load Checkpoint" },
      {
        id: "ks",
        type: "comfyui.KSampler",
        inputs: { model: { from: "ck", output: "model" }, seed: 5, steps: 20, cfg: 7.5, sampler_name: "euler", denoise: 1, add_noise: true },
        label: "KSampler",
      },
    ],
  },
};

function backend(request: FakeRequest) {
  if (request.url === "/api/v1/nodes") return { body: { data: COMFY_CATALOG } };
  if (request.url === "/api/v1/workflows/wf_comfy") return { body: WORKFLOW };
  if (request.url === "/api/v1/workflows/validate") return { body: { valid: true, errors: [] } };
  return { status: 404, body: { error: { code: "not_found", message: "No." } } };
}

async function openEditor() {
  installFetch(backend);
  render(
    <MemoryRouter initialEntries={["/workflows/wf_comfy"]}>
      <Routes>
        <Route path="/workflows/:id" element={<EditorPage />} />
      </Routes>
    </MemoryRouter>,
  );
  return screen.findByTestId("node-2");
}

describe("ComfyUI nodes on the canvas", () => {
  it("draws sockets and widgets: combos as selects, numbers, toggles, linked widgets", async () => {
    const scale = await openEditor();
    expect(scale).toHaveAttribute("data-node-type", "comfyui.ImageScale");
    expect(scale).toHaveTextContent("input:size");
    expect(scale).toHaveTextContent("ImageScale");
    expect(screen.getByTestId("handle-2-in-image")).toHaveAttribute("data-port-type", "list<image>");
    expect(screen.getByTestId("handle-2-in-crop")).toHaveAttribute("data-port-type", "text");

    const crop = screen.getByTestId("widget-2-crop") as HTMLSelectElement;
    expect(crop.tagName).toBe("SELECT");
    expect([...crop.options].map((option) => option.textContent)).toEqual(["disabled", "center"]);
    expect(crop.selectedOptions[0].textContent).toBe("disabled");
    expect(within(scale).getByTestId("widget-2-upscale_method")).toHaveTextContent("linked");
    expect((screen.getByTestId("widget-2-height") as HTMLInputElement).value).toBe("32");

    // the sampler: MODEL socket (read without its prefix), a LATENT socket, its widgets
    expect(screen.getByTestId("handle-ks-in-model")).toHaveAttribute("data-port-type", "comfyui:MODEL");
    expect(screen.getByTestId("node-ks")).toHaveTextContent("MODEL");
    expect(screen.getByTestId("node-ks")).not.toHaveTextContent("comfyui:MODEL");
    expect(screen.getByTestId("handle-ks-out-latent")).toHaveAttribute("data-port-type", "comfyui:LATENT");
    expect(screen.getByTestId("widget-ks-sampler_name").tagName).toBe("SELECT");
    expect(screen.getByTestId("widget-ks-add_noise")).toBeChecked();
    expect((screen.getByTestId("widget-ks-cfg") as HTMLInputElement).value).toBe("7.5");
    // a combo value the servers do not offer (a model file they lack) stays visible, flagged
    expect((screen.getByTestId("widget-ck-ckpt_name") as HTMLSelectElement).selectedOptions[0].textContent).toBe("sd15.safetensors (not on the servers)");

    // editing a widget edits the graph that Save sends
    fireEvent.change(crop, { target: { value: "1" } });
    fireEvent.change(screen.getByTestId("widget-ks-steps"), { target: { value: "30" } });
    fireEvent.click(screen.getByTestId("widget-ks-add_noise"));
    const nodes = Object.fromEntries(useGraphStore.getState().getGraph().nodes.map((node) => [node.id, node]));
    expect(nodes["2"].inputs).toMatchObject({ crop: "center", height: 32, upscale_method: { from: "input_sizeUpscaleMethod", output: "value" } });
    expect(nodes.ks.inputs).toMatchObject({ steps: 30, add_noise: false, sampler_name: "euler" });
    expect(useGraphStore.getState().dirty).toBe(true);
  });

  it("adds a ComfyUI node from the palette with its widget defaults", async () => {
    await openEditor();
    fireEvent.click(screen.getByTestId("palette-item-comfyui.KSampler"));
    const added = useGraphStore.getState().nodes.at(-1)!;
    expect(added.data.nodeType).toBe("comfyui.KSampler");
    expect(added.data.literals).toEqual({ seed: 0, steps: 20, cfg: 8, sampler_name: "euler", denoise: 1, add_noise: true });
    expect(screen.getByTestId(`palette-category-comfyui/sampling`)).toBeInTheDocument();
  });

  it("shows live progress per ComfyUI node with ComfyUI's step counter", async () => {
    await openEditor();
    act(() => {
      const run = useRunStore.getState();
      run.begin("ex_1", ["ck", "ks"]);
      run.applyEvent("node.started", { executionId: "ex_1", nodeId: "ks" });
      run.applyEvent("node.progress", { executionId: "ex_1", nodeId: "ks", progress: 0.6, value: 12, max: 20 });
    });
    expect(screen.getByTestId("node-ks")).toHaveAttribute("data-run-status", "running");
    expect(screen.getByTestId("node-progress-ks")).toHaveAttribute("aria-valuenow", "60");
    expect(screen.getByTestId("node-progress-ks")).toHaveAttribute("aria-valuetext", "step 12 of 20");
    expect(screen.getByTestId("node-progress-steps-ks")).toHaveTextContent("12 / 20 · 60%");
    expect(screen.getByTestId("node-ck")).toHaveAttribute("data-run-status", "queued");
    act(() => useRunStore.getState().applyEvent("node.completed", { executionId: "ex_1", nodeId: "ks" }));
    expect(screen.getByTestId("node-ks")).toHaveAttribute("data-run-status", "completed");
    expect(screen.queryByTestId("node-progress-steps-ks")).not.toBeInTheDocument();
    act(() => useRunStore.getState().reset());
  });
});
