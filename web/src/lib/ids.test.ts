import { describe, expect, it } from "vitest";
import { copyId, idBase, uniqueNodeId } from "./ids";

describe("node ids", () => {
  it("derives a readable base from the type", () => {
    expect(idBase("generate.flux_2_pro")).toBe("flux_2_pro");
    expect(idBase("image.Resize-Fit")).toBe("resize_fit");
    expect(idBase("...")).toBe("node");
  });

  it("numbers ids that are taken", () => {
    expect(uniqueNodeId("input.text", new Set())).toBe("text");
    expect(uniqueNodeId("input.text", new Set(["text"]))).toBe("text_2");
    expect(uniqueNodeId("input.text", new Set(["text", "text_2"]))).toBe("text_3");
  });

  it("gives copies a fresh id with the same stem", () => {
    expect(copyId("gen_3", new Set(["gen", "gen_3"]))).toBe("gen_2");
    expect(copyId("prompt", new Set(["prompt"]))).toBe("prompt_2");
  });
});
