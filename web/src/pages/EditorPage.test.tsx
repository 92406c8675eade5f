// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { configureClient } from "../api/client";
import type { Workflow } from "../api/types";
import { useGraphStore } from "../stores/graphStore";
import { CATALOG } from "../test/fixtures";
import { installFetch, type FakeRequest } from "../test/http";
import { EditorPage } from "./EditorPage";

beforeAll(() => {
  // jsdom has no layout: React Flow needs these to mount.
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
});

const WORKFLOW: Workflow = {
  id: "wf_1",
  name: "Fox",
  description: "",
  graph: {
    nodes: [
      { id: "prompt", type: "input.text", params: { name: "prompt" }, position: { x: 0, y: 0 } },
      { id: "gen", type: "generate.flux_2_pro", inputs: { prompt: { from: "prompt", output: "text" } }, params: { steps: 99 }, position: { x: 300, y: 0 } },
    ],
  },
  inputs: [{ name: "prompt", type: "text", required: true }],
  publishedVersion: null,
  webhookId: "wh_1",
};

function backend(request: FakeRequest) {
  if (request.url === "/api/v1/nodes") return { body: { data: CATALOG } };
  if (request.url === "/api/v1/workflows/wf_1" && request.method === "GET") return { body: WORKFLOW };
  if (request.url === "/api/v1/workflows/wf_1" && request.method === "PUT") return { body: { ...WORKFLOW, ...(request.body as object) } };
  if (request.url === "/api/v1/workflows/validate") {
    return { body: { valid: false, errors: [{ path: "nodes[1].params.steps", message: "Must be at most 50." }] } };
  }
  return { status: 404, body: { error: { code: "not_found", message: "No." } } };
}

function renderEditor() {
  return render(
    <MemoryRouter initialEntries={["/workflows/wf_1"]}>
      <Routes>
        <Route path="/workflows/:id" element={<EditorPage />} />
      </Routes>
    </MemoryRouter>,
  );
}

describe("EditorPage", () => {
  it("loads the workflow onto the canvas, pins validation errors, adds from the palette and saves", async () => {
    const { calls } = installFetch(backend);
    renderEditor();
    await screen.findByTestId("node-gen");
    expect(screen.getByTestId("node-prompt")).toHaveAttribute("data-node-type", "input.text");
    expect(screen.getByTestId("handle-gen-in-prompt")).toHaveAttribute("data-port-type", "text");
    expect(screen.getByTestId("editor-name")).toHaveValue("Fox");

    await waitFor(() => expect(screen.getByTestId("node-errors-gen")).toHaveTextContent("steps: Must be at most 50."), { timeout: 3000 });
    expect(screen.getByTestId("editor-validation")).toHaveTextContent("1 problem");

    fireEvent.click(screen.getByTestId("palette-item-output.image"));
    await screen.findByTestId("node-image");
    expect(screen.getByTestId("inspector-node-image")).toBeInTheDocument();
    expect(screen.getByTestId("editor-save-status")).toHaveAttribute("data-dirty", "true");

    act(() => {
      useGraphStore.getState().connect({ source: "gen", sourceHandle: "image", target: "image", targetHandle: "image" });
    });
    fireEvent.keyDown(window, { key: "s", ctrlKey: true });
    await waitFor(() => expect(screen.getByTestId("editor-save-status")).toHaveAttribute("data-dirty", "false"));
    const put = calls.find((call) => call.method === "PUT")!;
    expect(put.body).toMatchObject({
      name: "Fox",
      graph: { nodes: [{ id: "prompt" }, { id: "gen" }, { id: "image", type: "output.image", inputs: { image: { from: "gen", output: "image" } } }] },
    });
  });

  it("shows an error, not a blank page, when the workflow cannot be loaded", async () => {
    installFetch((request) => (request.url === "/api/v1/nodes" ? { body: { data: CATALOG } } : { status: 404, body: { error: { code: "not_found", message: "No such workflow." } } }));
    renderEditor();
    expect(await screen.findByTestId("editor-load-error")).toHaveTextContent("No such workflow.");
  });
});
