// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { COMFY_CATALOG } from "../test/comfyFixtures";
import { CATALOG } from "../test/fixtures";
import { groupCatalog, Palette } from "./Palette";

afterEach(cleanup);

describe("Palette", () => {
  it("groups by category and searches names, types and descriptions", () => {
    expect(groupCatalog(CATALOG, "").map(([category]) => category)).toEqual(["generate", "image", "input", "output", "upscale", "util"]);
    expect(groupCatalog(CATALOG, "resize").flatMap(([, defs]) => defs.map((def) => def.type))).toEqual(["image.resize"]);
    expect(groupCatalog(CATALOG, "text to image").flatMap(([, defs]) => defs.map((def) => def.type))).toEqual(["generate.flux_2_pro"]);
  });

  it("adds a node on click, and greys unavailable ones with their reason", () => {
    const onAdd = vi.fn();
    render(<Palette defs={CATALOG} onAdd={onAdd} />);
    fireEvent.click(screen.getByTestId("palette-item-image.resize"));
    expect(onAdd).toHaveBeenCalledWith("image.resize");
    const gpu = screen.getByTestId("palette-item-upscale.local_gpu");
    expect(gpu).toHaveAttribute("aria-disabled", "true");
    expect(gpu).toHaveAttribute("draggable", "false");
    expect(screen.getByTestId("palette-reason-upscale.local_gpu")).toHaveTextContent("No GPU worker is configured.");
    fireEvent.click(gpu);
    expect(onAdd).toHaveBeenCalledTimes(1);
  });

  it("puts the node type on the drag payload", () => {
    render(<Palette defs={CATALOG} onAdd={() => {}} />);
    const data = new Map<string, string>();
    const dataTransfer = { setData: (k: string, v: string) => data.set(k, v), effectAllowed: "" };
    fireEvent.dragStart(screen.getByTestId("palette-item-generate.flux_2_pro"), { dataTransfer });
    expect(data.get("application/x-nodeloom-node-type")).toBe("generate.flux_2_pro");
  });

  it("says so when nothing matches", () => {
    render(<Palette defs={CATALOG} onAdd={() => {}} />);
    fireEvent.change(screen.getByTestId("palette-search"), { target: { value: "zzz" } });
    expect(screen.getByTestId("palette-empty")).toBeInTheDocument();
  });

  it("folds ComfyUI's categories until a search looks into them", () => {
    render(<Palette defs={COMFY_CATALOG} onAdd={() => {}} />);
    expect(screen.getByTestId("palette-category-comfyui/sampling")).not.toHaveAttribute("open");
    expect(screen.getByTestId("palette-category-generate")).toHaveAttribute("open");
    fireEvent.change(screen.getByTestId("palette-search"), { target: { value: "ksampler" } });
    expect(screen.getByTestId("palette-category-comfyui/sampling")).toHaveAttribute("open");
  });
});
