// A ComfyUI node's widgets drawn on the canvas, as ComfyUI draws them: every literal input (a number, a text,
// a toggle, a combo as a select) is edited in place on the node, and keeps its handle so a native node (or an
// exposed input) can feed it instead. Controls carry `nodrag nowheel` so editing never drags or zooms the canvas.

import { Handle, Position } from "@xyflow/react";
import type { CSSProperties, ReactNode } from "react";
import type { FieldSchema } from "../api/types";
import { displayType, normaliseType, portColour } from "../lib/portTypes";
import { parseNumber } from "../lib/schemaFields";
import { useGraphStore } from "../stores/graphStore";

export { isWidget } from "../lib/comfyNodes";

const LONG_TEXT = /^(text|prompt|text_[gl]|clip_l|t5xxl|string|value|system_prompt)$/i;

function summarise(value: unknown): string {
  if (value === undefined || value === null) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 24 ? `${text.slice(0, 23)}…` : text;
}

export function ComfyWidgetRow(props: { nodeId: string; port: FieldSchema; linked: boolean; value: unknown; invalid: boolean }) {
  const { nodeId, port, linked, value, invalid } = props;
  const setLiteral = useGraphStore((state) => state.setLiteral);
  const type = normaliseType(port.type);
  const testId = `widget-${nodeId}-${port.name}`;
  const label = `${port.name} (${displayType(port.type)})`;
  const shown = value;
  const onChange = (next: unknown) => setLiteral(nodeId, port.name, next);

  let control: ReactNode;
  const choices = port.constraints?.enum;
  const text = typeof shown === "string" ? shown : shown === undefined || shown === null ? "" : String(shown);
  // a prompt-like or multi-line text is a small text area, as in ComfyUI (never switched while typing: the length
  // of what is typed does not decide it)
  const long = !linked && !Array.isArray(choices) && type === "text" && (LONG_TEXT.test(port.name) || text.includes("\n"));
  if (linked) {
    control = (
      <span className="widget-linked" data-testid={testId} data-linked="true">
        linked
      </span>
    );
  } else if (Array.isArray(choices)) {
    const index = choices.findIndex((choice) => choice === shown);
    control = (
      <select
        className="widget-control nodrag nowheel"
        aria-label={label}
        value={index >= 0 ? String(index) : shown === undefined ? "" : "missing"}
        onChange={(event) => onChange(event.target.value === "" ? undefined : choices[Number(event.target.value)])}
        data-testid={testId}
      >
        {shown === undefined && <option value="">Choose…</option>}
        {index < 0 && shown !== undefined && <option value="missing">{`${summarise(shown)} (not on the servers)`}</option>}
        {choices.map((choice, i) => (
          <option key={i} value={String(i)}>
            {String(choice)}
          </option>
        ))}
      </select>
    );
  } else if (type === "boolean") {
    control = (
      <input
        type="checkbox"
        className="widget-check nodrag"
        aria-label={label}
        checked={shown === true}
        onChange={(event) => onChange(event.target.checked)}
        data-testid={testId}
      />
    );
  } else if (type === "integer" || type === "number") {
    const { min, max, step } = port.constraints ?? {};
    control = (
      <input
        type="number"
        className="widget-control nodrag nowheel"
        aria-label={label}
        inputMode={type === "integer" ? "numeric" : "decimal"}
        min={typeof min === "number" ? min : undefined}
        max={typeof max === "number" ? max : undefined}
        step={typeof step === "number" ? step : type === "integer" ? 1 : "any"}
        value={typeof shown === "number" && !Number.isNaN(shown) ? String(shown) : ""}
        onChange={(event) => onChange(parseNumber(event.target.value))}
        data-testid={testId}
      />
    );
  } else {
    control = long ? (
      <textarea
        className="widget-control widget-textarea nodrag nowheel"
        aria-label={label}
        rows={3}
        value={text}
        onChange={(event) => onChange(event.target.value)}
        data-testid={testId}
      />
    ) : (
      <input
        type="text"
        className="widget-control nodrag"
        aria-label={label}
        value={text}
        onChange={(event) => onChange(event.target.value)}
        data-testid={testId}
      />
    );
  }

  return (
    <div className={`port port-in comfy-widget${long ? " comfy-widget-long" : ""}${invalid ? " port-invalid" : ""}${linked ? " widget-is-linked" : ""}`}>
      <Handle
        type="target"
        position={Position.Left}
        id={port.name}
        style={{ "--port-colour": portColour(port.type) } as CSSProperties}
        title={`${port.name}: ${displayType(port.type)}${linked ? "" : " · link an output here instead of the value"}`}
        aria-label={`Input ${port.name} (${displayType(port.type)})`}
        data-testid={`handle-${nodeId}-in-${port.name}`}
        data-port-type={port.type}
      />
      <span className="port-name widget-name" title={port.description || port.name}>
        {port.name}
        {port.required && linked === false && shown === undefined && <span className="required"> *</span>}
      </span>
      {control}
    </div>
  );
}
