import { describe, expect, it } from "vitest";
import { buildInputs, checkFieldValue, defaultValues, fieldKind, fieldLabel, mediaAccept, parseNumber } from "./schemaFields";

describe("schema fields", () => {
  it("picks a control for each schema", () => {
    expect(fieldKind({ name: "mode", type: "text", constraints: { enum: ["a", "b"] } })).toBe("enum");
    expect(fieldKind({ name: "on", type: "boolean" })).toBe("boolean");
    expect(fieldKind({ name: "steps", type: "integer" })).toBe("integer");
    expect(fieldKind({ name: "scale", type: "number" })).toBe("number");
    expect(fieldKind({ name: "data", type: "json" })).toBe("json");
    expect(fieldKind({ name: "items", type: "list<text>" })).toBe("json");
    expect(fieldKind({ name: "photo", type: "image" })).toBe("media");
    expect(fieldKind({ name: "prompt", type: "text" })).toBe("longtext");
    expect(fieldKind({ name: "title", type: "text" })).toBe("text");
    expect(mediaAccept("image")).toBe("image/*");
    expect(mediaAccept("file")).toBeUndefined();
    expect(fieldLabel({ name: "aspectRatio", type: "text" })).toBe("Aspect Ratio");
  });

  it("collects defaults without sharing objects", () => {
    const schema = [{ name: "a", type: "json", default: { x: 1 } }, { name: "b", type: "text" }, { name: "c", type: "integer", default: 0 }];
    const values = defaultValues(schema);
    expect(values).toEqual({ a: { x: 1 }, c: 0 });
    expect(values.a).not.toBe(schema[0].default);
  });

  it("checks values against required, min/max, integer and enum", () => {
    const steps = { name: "steps", type: "integer", required: true, constraints: { min: 1, max: 50 } };
    expect(checkFieldValue(steps, undefined)).toBe("Required.");
    expect(checkFieldValue(steps, 0)).toBe("At least 1.");
    expect(checkFieldValue(steps, 51)).toBe("At most 50.");
    expect(checkFieldValue(steps, 2.5)).toBe("Enter a whole number.");
    expect(checkFieldValue(steps, Number.NaN)).toBe("Enter a number.");
    expect(checkFieldValue(steps, 10)).toBeNull();
    expect(checkFieldValue({ name: "m", type: "text", constraints: { enum: ["a"] } }, "b")).toMatch(/Choose one of a/);
    expect(checkFieldValue({ name: "x", type: "text", required: true, default: "d" }, "")).toBeNull();
    expect(parseNumber("")).toBeUndefined();
    expect(parseNumber("4.5")).toBe(4.5);
  });

  it("builds the inputs object and reports problems per field", () => {
    const schemas = [
      { name: "prompt", type: "text", required: true },
      { name: "seed", type: "integer" },
    ];
    expect(buildInputs(schemas, { prompt: "a fox", seed: undefined })).toEqual({ inputs: { prompt: "a fox" }, errors: {} });
    expect(buildInputs(schemas, { prompt: " " }).errors).toEqual({ prompt: "Required." });
  });
});
