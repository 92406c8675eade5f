// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { configureClient } from "../api/client";
import { installFetch } from "../test/http";
import { SchemaField } from "./SchemaField";

afterEach(() => {
  cleanup();
  configureClient({ fetchImpl: null });
});

describe("SchemaField", () => {
  it("renders a number input with min/max and reports numbers", () => {
    const onChange = vi.fn();
    render(<SchemaField schema={{ name: "steps", type: "integer", constraints: { min: 1, max: 50 } }} value={28} onChange={onChange} testId="f" />);
    const input = screen.getByLabelText(/Steps/) as HTMLInputElement;
    expect(input.type).toBe("number");
    expect(input.min).toBe("1");
    expect(input.max).toBe("50");
    expect(input.value).toBe("28");
    fireEvent.change(input, { target: { value: "12" } });
    expect(onChange).toHaveBeenLastCalledWith(12);
    fireEvent.change(input, { target: { value: "" } });
    expect(onChange).toHaveBeenLastCalledWith(undefined);
  });

  it("renders an enum as a select that returns the original option values", () => {
    const onChange = vi.fn();
    render(<SchemaField schema={{ name: "size", type: "integer", constraints: { enum: [512, 1024] } }} value={512} onChange={onChange} testId="f" />);
    const select = screen.getByTestId("f") as HTMLSelectElement;
    expect(select.tagName).toBe("SELECT");
    fireEvent.change(select, { target: { value: "1" } });
    expect(onChange).toHaveBeenLastCalledWith(1024);
  });

  it("renders a boolean as a checkbox, using the default until set", () => {
    const onChange = vi.fn();
    render(<SchemaField schema={{ name: "safety", type: "boolean", default: true }} value={undefined} onChange={onChange} testId="f" />);
    const box = screen.getByLabelText("Safety") as HTMLInputElement;
    expect(box.checked).toBe(true);
    fireEvent.click(box);
    expect(onChange).toHaveBeenLastCalledWith(false);
  });

  it("parses JSON and flags text that is not JSON yet", () => {
    const onChange = vi.fn();
    render(<SchemaField schema={{ name: "values", type: "json" }} value={undefined} onChange={onChange} testId="f" />);
    fireEvent.change(screen.getByTestId("f"), { target: { value: '{"a": 1}' } });
    expect(onChange).toHaveBeenLastCalledWith({ a: 1 });
    fireEvent.change(screen.getByTestId("f"), { target: { value: '{"a":' } });
    expect(screen.getByTestId("f-json-error")).toBeInTheDocument();
  });

  it("uploads an image and stores its fileId", async () => {
    const { calls } = installFetch(() => ({ body: { fileId: "file_9", url: "https://files/x.png", contentType: "image/png", size: 3 } }));
    const onChange = vi.fn();
    render(<SchemaField schema={{ name: "image", type: "image", required: true }} value={undefined} onChange={onChange} testId="f" />);
    const picker = screen.getByTestId("f-upload") as HTMLInputElement;
    expect(picker.accept).toBe("image/*");
    fireEvent.change(picker, { target: { files: [new File(["png"], "x.png", { type: "image/png" })] } });
    await vi.waitFor(() => expect(onChange).toHaveBeenCalledWith("file_9"));
    expect(calls[0]).toMatchObject({ method: "POST", url: "/api/v1/uploads" });
    expect(calls[0].body).toBeInstanceOf(FormData);
  });

  it("shows the field's error", () => {
    render(<SchemaField schema={{ name: "width", type: "number" }} value={undefined} onChange={() => {}} testId="f" error="must be positive" />);
    expect(screen.getByTestId("f-error")).toHaveTextContent("must be positive");
  });
});
