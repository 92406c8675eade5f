// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { MemoryRouter, Route, Routes, useParams } from "react-router-dom";
import { afterEach, describe, expect, it } from "vitest";
import { configureClient } from "../api/client";
import type { ComfyImportResult } from "../api/types";
import { useCatalogStore } from "../stores/catalogStore";
import { API_EXPORT, COMFY_CATALOG, IMPORTED } from "../test/comfyFixtures";
import { installFetch, type FakeRequest } from "../test/http";
import { WorkflowsPage } from "../pages/WorkflowsPage";

afterEach(() => {
  cleanup();
  configureClient({ fetchImpl: null });
  useCatalogStore.setState({ status: "idle", defs: [], error: null });
});

function Opened() {
  const { id } = useParams();
  return <div data-testid="opened">{id}</div>;
}

function renderPage() {
  return render(
    <MemoryRouter initialEntries={["/workflows"]}>
      <Routes>
        <Route path="/workflows" element={<WorkflowsPage />} />
        <Route path="/workflows/:id" element={<Opened />} />
      </Routes>
    </MemoryRouter>,
  );
}

/** What the server answers to a re-import with explicit mappings (only what the test checks). */
function reimported(body: { inputs?: Record<string, { node: string; input: string }>; outputs?: Record<string, { node: string }> }): ComfyImportResult {
  const nodes = IMPORTED.graph.nodes.filter((node) => !node.type.startsWith("input.") && !node.type.startsWith("output."));
  const inputs = Object.entries(body.inputs ?? {}).map(([name, m]) => ({ id: `input_${name}`, type: "input.integer", params: { name }, target: m }));
  return {
    ...IMPORTED,
    graph: {
      nodes: [
        ...inputs.map(({ id, type, params }) => ({ id, type, params })),
        ...nodes.map((node) => {
          const linked = inputs.filter((i) => i.target.node === node.id);
          return linked.length ? { ...node, inputs: { ...node.inputs, ...Object.fromEntries(linked.map((i) => [i.target.input, { from: i.id, output: "value" }])) } } : node;
        }),
        ...Object.entries(body.outputs ?? {}).map(([name, m]) => ({ id: `output_${name}`, type: "output.image", params: { name }, inputs: { image: { from: m.node, output: "images" } } })),
      ],
    },
    importNotes: ["output 'inverted' (list<image>) ← node 4 (Save Image): mapped by the request"],
  };
}

function backend(overrides: Partial<Record<string, (request: FakeRequest) => { status?: number; body?: unknown }>> = {}) {
  return (request: FakeRequest) => {
    const key = `${request.method} ${request.url.split("?")[0]}`;
    const override = overrides[key];
    if (override) return override(request);
    if (key === "GET /api/v1/workflows") return { body: { data: [], nextCursor: null } };
    if (key === "GET /api/v1/nodes") return { body: { data: COMFY_CATALOG } };
    if (key === "POST /api/v1/workflows/import/comfyui") return { status: 201, body: IMPORTED };
    if (key === "PUT /api/v1/workflows/wf_comfy/import/comfyui") return { body: reimported(request.body as never) };
    if (key === "DELETE /api/v1/workflows/wf_comfy") return { status: 204 };
    return { status: 404, body: { error: { code: "not_found", message: `No ${key}.` } } };
  };
}

async function openDialog() {
  fireEvent.click(await screen.findByTestId("workflow-import-comfyui"));
  return screen.findByTestId("comfy-import-dialog");
}

describe("Import ComfyUI workflow", () => {
  it("imports a pasted export, lets the user rename, drop and add exposures, re-imports with mappings and opens it", async () => {
    const { calls } = installFetch(backend());
    renderPage();
    await openDialog();
    fireEvent.change(screen.getByTestId("comfy-import-name"), { target: { value: "fox" } });
    fireEvent.change(screen.getByTestId("comfy-import-json"), { target: { value: JSON.stringify({ input: { workflow: API_EXPORT } }) } });
    expect(screen.getByTestId("comfy-import-detected")).toHaveTextContent("API format · 4 nodes · taken from a worker-comfyui request");
    fireEvent.click(screen.getByTestId("comfy-import-submit"));

    const review = await screen.findByTestId("comfy-import-review");
    const post = calls.find((call) => call.method === "POST")!;
    expect(post.url).toBe("/api/v1/workflows/import/comfyui");
    expect(post.body).toEqual({ name: "fox", workflow: API_EXPORT });
    expect(review).toHaveAttribute("data-workflow-id", "wf_comfy");
    expect(screen.getByTestId("comfy-import-node-count")).toHaveTextContent("4");
    expect(screen.getByTestId("comfy-import-notes")).toHaveTextContent("output 'image' (list<image>) ← node 4 (Save Image)");
    expect(screen.getByTestId("comfy-import-notes")).toHaveTextContent("no sampler");
    expect(screen.getByTestId("comfy-import-input-2-upscale_method")).toHaveValue("sizeUpscaleMethod");
    expect(screen.getByTestId("comfy-import-input-2-width")).toHaveValue("sizeWidth");
    expect(screen.getByTestId("comfy-import-output-4")).toHaveValue("image");
    expect(screen.getByTestId("comfy-import-apply")).toBeDisabled();
    expect(screen.getByTestId("comfy-import-open-workflow")).toHaveTextContent("Open workflow");

    // rename the output, drop one input, expose EmptyImage's width as "w"
    fireEvent.change(screen.getByTestId("comfy-import-output-4"), { target: { value: "inverted" } });
    fireEvent.click(screen.getByTestId("comfy-import-input-2-width-remove"));
    const picker = screen.getByTestId("comfy-import-add-input");
    expect(within(picker).getByRole("option", { name: "width = 64" })).toBeInTheDocument();
    fireEvent.change(picker, { target: { value: "1\u0000width" } });
    expect(screen.getByTestId("comfy-import-add-input-name")).toHaveValue("width");
    fireEvent.change(screen.getByTestId("comfy-import-add-input-name"), { target: { value: "w" } });
    fireEvent.click(screen.getByTestId("comfy-import-add-input-submit"));
    expect(screen.getByTestId("comfy-import-input-1-width")).toHaveValue("w");
    expect(screen.getByTestId("comfy-import-pending")).toBeInTheDocument();
    expect(screen.getByTestId("comfy-import-open-workflow")).toHaveTextContent("Apply and open");

    fireEvent.click(screen.getByTestId("comfy-import-open-workflow"));
    expect(await screen.findByTestId("opened")).toHaveTextContent("wf_comfy");
    const put = calls.find((call) => call.method === "PUT")!;
    expect(put.url).toBe("/api/v1/workflows/wf_comfy/import/comfyui");
    expect(put.body).toEqual({
      workflow: API_EXPORT,
      inputs: { sizeUpscaleMethod: { node: "2", input: "upscale_method" }, w: { node: "1", input: "width" } },
      outputs: { inverted: { node: "4" } },
    });
    expect(calls.some((call) => call.method === "DELETE")).toBe(false);
  });

  it("sends only the side that changed, shows the new notes, and refuses duplicate names before sending", async () => {
    const { calls } = installFetch(backend());
    renderPage();
    await openDialog();
    fireEvent.change(screen.getByTestId("comfy-import-json"), { target: { value: JSON.stringify(API_EXPORT) } });
    fireEvent.click(screen.getByTestId("comfy-import-submit"));
    await screen.findByTestId("comfy-import-review");

    fireEvent.change(screen.getByTestId("comfy-import-input-2-width"), { target: { value: "sizeUpscaleMethod" } });
    expect(screen.getAllByText("“sizeUpscaleMethod” is used twice.")).toHaveLength(2);
    expect(screen.getByTestId("comfy-import-apply")).toBeDisabled();
    expect(screen.getByTestId("comfy-import-open-workflow")).toBeDisabled();
    fireEvent.change(screen.getByTestId("comfy-import-input-2-width"), { target: { value: "sizeWidth" } });

    fireEvent.change(screen.getByTestId("comfy-import-output-4"), { target: { value: "inverted" } });
    fireEvent.click(screen.getByTestId("comfy-import-apply"));
    await waitFor(() => expect(screen.getByTestId("comfy-import-notes")).toHaveTextContent("mapped by the request"));
    const put = calls.find((call) => call.method === "PUT")!;
    expect(put.body).toEqual({ workflow: API_EXPORT, outputs: { inverted: { node: "4" } } });
    expect(screen.getByTestId("comfy-import-output-4")).toHaveValue("inverted");
    expect(screen.queryByTestId("comfy-import-pending")).not.toBeInTheDocument();
  });

  it("uploads a PNG as multipart, named after the file, and discarding deletes the draft", async () => {
    const { calls } = installFetch(backend());
    renderPage();
    await openDialog();
    fireEvent.click(screen.getByTestId("comfy-import-mode-file"));
    const png = new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], "ComfyUI_00001_.png", { type: "image/png" });
    fireEvent.change(screen.getByTestId("comfy-import-file"), { target: { files: [png] } });
    await waitFor(() => expect(screen.getByTestId("comfy-import-name")).toHaveValue("ComfyUI_00001_"));
    expect(screen.getByTestId("comfy-import-detected")).toHaveAttribute("data-shape", "png");
    fireEvent.click(screen.getByTestId("comfy-import-submit"));
    await screen.findByTestId("comfy-import-review");
    const post = calls.find((call) => call.method === "POST")!;
    expect(post.body).toBeInstanceOf(FormData);
    const form = post.body as FormData;
    expect(form.get("name")).toBe("ComfyUI_00001_");
    expect((form.get("file") as File).name).toBe("ComfyUI_00001_.png");
    expect(post.headers["Content-Type"]).toBeUndefined(); // the browser sets the multipart boundary

    // a change re-sends the file with the mappings as JSON text
    fireEvent.change(screen.getByTestId("comfy-import-output-4"), { target: { value: "result" } });
    fireEvent.click(screen.getByTestId("comfy-import-apply"));
    await waitFor(() => expect(calls.some((call) => call.method === "PUT")).toBe(true));
    const put = calls.find((call) => call.method === "PUT")!.body as FormData;
    expect(JSON.parse(put.get("outputs") as string)).toEqual({ result: { node: "4" } });
    expect(put.get("inputs")).toBeNull();
    expect((put.get("file") as File).name).toBe("ComfyUI_00001_.png");
    await waitFor(() => expect(screen.getByTestId("comfy-import-apply")).toBeDisabled());

    fireEvent.click(screen.getByTestId("comfy-import-discard"));
    await waitFor(() => expect(screen.queryByTestId("comfy-import-dialog")).not.toBeInTheDocument());
    expect(calls.some((call) => call.method === "DELETE" && call.url === "/api/v1/workflows/wf_comfy")).toBe(true);
  });

  it("explains an export it cannot read without calling the server", async () => {
    const { calls } = installFetch(backend());
    renderPage();
    await openDialog();
    fireEvent.change(screen.getByTestId("comfy-import-json"), { target: { value: '{"hello": "world"}' } });
    expect(screen.getByTestId("comfy-import-parse-error")).toHaveTextContent("not a ComfyUI workflow");
    fireEvent.click(screen.getByTestId("comfy-import-submit"));
    expect(await screen.findByTestId("comfy-import-error")).toHaveTextContent("Export (API)");
    expect(calls.filter((call) => call.url.includes("import"))).toEqual([]);
  });

  it.each([
    [
      422,
      { code: "comfyui_ui_unsupported", message: "node 7 (NoSuchNode): node type 'NoSuchNode' is not available on the ComfyUI servers", details: [{ path: "workflow.nodes[1]", message: "unknown node type" }] },
      ["This UI-format workflow cannot be converted.", "NoSuchNode", "Export (API)", "workflow.nodes[1]"],
    ],
    [
      422,
      { code: "validation_error", message: "node 3: no such type", details: [{ path: "workflow.3.class_type", message: "node 3: no such type" }] },
      ["The workflow was refused.", "node 3: no such type (at workflow.3.class_type)"],
    ],
    [503, { code: "comfyui_unavailable", message: "no ComfyUI server has answered yet" }, ["No ComfyUI server is available yet.", "NODELOOM_COMFYUI_URLS"]],
    [
      422,
      { code: "validation_error", message: "node 2: node type 'NoSuch' is not available", details: [{ path: "workflow.2.class_type", message: "node 2: node type 'NoSuch' is not available on the ComfyUI servers" }] },
      ["The workflow was refused.", "workflow.2.class_type"],
    ],
  ])("shows a %s %s clearly, with its details, and stays on the form", async (status, error, texts) => {
    installFetch(backend({ "POST /api/v1/workflows/import/comfyui": () => ({ status, body: { error } }) }));
    renderPage();
    await openDialog();
    fireEvent.change(screen.getByTestId("comfy-import-json"), { target: { value: JSON.stringify(API_EXPORT) } });
    fireEvent.click(screen.getByTestId("comfy-import-submit"));
    const shown = await screen.findByTestId("comfy-import-error");
    expect(shown).toHaveAttribute("data-code", error.code);
    expect(shown).toHaveAttribute("data-status", String(status));
    for (const text of texts) expect(shown).toHaveTextContent(text);
    expect(screen.getByTestId("comfy-import-dialog")).toHaveAttribute("data-stage", "source");
    expect(screen.getByTestId("comfy-import-submit")).toBeEnabled();
  });
});
