import { describe, expect, it } from "vitest";
import { canFeed, incompatibilityReason, isFanOut, listElement, normaliseType, portColour } from "./portTypes";

describe("port types", () => {
  it("normalises case and spacing, including list element types", () => {
    expect(normaliseType(" Text ")).toBe("text");
    expect(normaliseType("List< Image >")).toBe("list<image>");
    expect(normaliseType(undefined)).toBe("any");
    expect(listElement("list<integer>")).toBe("integer");
    expect(listElement("image")).toBeNull();
  });

  it("accepts equal types and refuses different ones", () => {
    expect(canFeed("image", "image")).toBe(true);
    expect(canFeed("text", "image")).toBe(false);
    expect(canFeed("number", "integer")).toBe(false);
    expect(canFeed("video", "audio")).toBe(false);
  });

  it("lets any accept and produce every type", () => {
    expect(canFeed("any", "image")).toBe(true);
    expect(canFeed("video", "any")).toBe(true);
    expect(canFeed("list<text>", "any")).toBe(true);
  });

  it("lets an integer feed a number, not the reverse", () => {
    expect(canFeed("integer", "number")).toBe(true);
    expect(canFeed("number", "integer")).toBe(false);
  });

  it("lets list<T> feed a T port (fan-out) and lists feed lists element-wise", () => {
    expect(canFeed("list<image>", "image")).toBe(true);
    expect(canFeed("list<integer>", "number")).toBe(true);
    expect(canFeed("list<image>", "list<image>")).toBe(true);
    expect(canFeed("list<text>", "image")).toBe(false);
    expect(canFeed("image", "list<image>")).toBe(false);
    expect(isFanOut("list<image>", "image")).toBe(true);
    expect(isFanOut("list<image>", "list<image>")).toBe(false);
    expect(isFanOut("list<image>", "any")).toBe(false);
  });

  it("explains a refusal and colours lists like their elements", () => {
    expect(incompatibilityReason("text", "image")).toMatch(/text output cannot feed a image input/);
    expect(incompatibilityReason("text", "text")).toBeNull();
    expect(portColour("list<image>")).toBe(portColour("image"));
    expect(portColour("weird")).toBe("#495057");
  });
});
