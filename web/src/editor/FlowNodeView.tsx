// A node on the canvas: typed handles (inputs left, outputs right), its run state and the
// validation problems pinned on it. It selects only its own slices of the stores.

import { Handle, Position, type NodeProps } from "@xyflow/react";
import { memo, type CSSProperties } from "react";
import { useShallow } from "zustand/react/shallow";
import type { FieldSchema } from "../api/types";
import { COMFY_NODE_PREFIX } from "../lib/comfyNodes";
import { formatPrice } from "../lib/format";
import { displayType, listElement, portColour } from "../lib/portTypes";
import type { FlowNode } from "../lib/types";
import { useGraphStore } from "../stores/graphStore";
import { useRunStore } from "../stores/runStore";
import { ComfyWidgetRow, isWidget } from "./ComfyWidgets";

const STATUS_LABEL: Record<string, string> = {
  queued: "queued",
  running: "running",
  completed: "done",
  cached: "cached",
  failed: "failed",
  cancelled: "cancelled",
  skipped: "skipped",
};

function summariseValue(value: unknown): string {
  if (value === undefined || value === null) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 28 ? `${text.slice(0, 27)}…` : text;
}

function formatStep(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function PortRow(props: {
  nodeId: string;
  port: FieldSchema;
  direction: "in" | "out";
  linked: boolean;
  literal?: unknown;
  invalid: boolean;
}) {
  const { nodeId, port, direction, linked, literal, invalid } = props;
  const isList = listElement(port.type) !== null;
  return (
    <div className={`port port-${direction}${invalid ? " port-invalid" : ""}`}>
      <Handle
        type={direction === "in" ? "target" : "source"}
        position={direction === "in" ? Position.Left : Position.Right}
        id={port.name}
        className={isList ? "handle-list" : undefined}
        style={{ "--port-colour": portColour(port.type) } as CSSProperties}
        title={`${port.name}: ${displayType(port.type)}`}
        aria-label={`${direction === "in" ? "Input" : "Output"} ${port.name} (${displayType(port.type)})`}
        data-testid={`handle-${nodeId}-${direction}-${port.name}`}
        data-port-type={port.type}
      />
      <span className="port-name">
        {port.name}
        {direction === "in" && port.required && !linked && literal === undefined && <span className="required"> *</span>}
      </span>
      <span className="port-type">{displayType(port.type)}</span>
      {direction === "in" && !linked && literal !== undefined && <span className="port-literal">= {summariseValue(literal)}</span>}
    </div>
  );
}

function FlowNodeViewImpl({ id, data, selected }: NodeProps<FlowNode>) {
  const def = useGraphStore((state) => state.catalog[data.nodeType]);
  const issues = useGraphStore((state) => state.issues.byNode[id]);
  const linkedInputs = useGraphStore(
    useShallow((state) => state.edges.filter((edge) => edge.target === id).map((edge) => edge.targetHandle ?? "")),
  );
  const linkedOutputs = useGraphStore(
    useShallow((state) => state.edges.filter((edge) => edge.source === id).map((edge) => edge.sourceHandle ?? "")),
  );
  const runState = useRunStore((state) => state.run?.nodes[id]);

  // An unknown type (e.g. a node pack that is not installed) still shows the ports its links use.
  const inputs: FieldSchema[] = def?.inputs ?? [...new Set(linkedInputs)].map((name) => ({ name, type: "any" }));
  const outputs: FieldSchema[] = def?.outputs ?? [...new Set(linkedOutputs)].map((name) => ({ name, type: "any" }));
  const invalidInputs = new Set((issues ?? []).filter((issue) => issue.field?.kind === "inputs").map((issue) => issue.field!.name));
  const status = runState?.status;
  const isComfy = data.nodeType.startsWith(COMFY_NODE_PREFIX);
  const comfyClass = isComfy ? data.nodeType.slice(COMFY_NODE_PREFIX.length) : null;
  const steps = runState?.steps;
  const shownParams = (def?.params ?? [])
    .filter((param) => data.params[param.name] !== undefined && param.name !== "name")
    .slice(0, 3);
  const title = data.label || def?.displayName || data.nodeType;
  const price = def ? formatPrice(def.credits) : null;
  const classes = [
    "flow-node",
    isComfy ? "comfy-node" : "",
    selected ? "selected" : "",
    issues?.length ? "has-issues" : "",
    status ? `run-${status}` : "",
    def ? "" : "unknown-type",
    def && !def.available ? "unavailable" : "",
  ];

  return (
    <div
      className={classes.filter(Boolean).join(" ")}
      data-testid={`node-${id}`}
      data-node-type={data.nodeType}
      data-run-status={status ?? "idle"}
      data-has-errors={issues?.length ? "true" : "false"}
      aria-label={`${title} node`}
    >
      <header className="flow-node-header">
        <span className="flow-node-title" title={data.nodeType}>
          {title}
        </span>
        {status && (
          <span className={`run-badge run-badge-${status}`} data-testid={`node-status-${id}`}>
            {STATUS_LABEL[status]}
          </span>
        )}
      </header>
      <div className="flow-node-meta">
        <span className="mono">{isComfy ? `#${id}` : id}</span>
        {comfyClass && (
          <span className="comfy-class mono" title={`ComfyUI node ${comfyClass}`}>
            {comfyClass}
          </span>
        )}
        {data.params.name !== undefined && /^(input|output)\./.test(data.nodeType) && (
          <span className="flow-node-name">“{summariseValue(data.params.name)}”</span>
        )}
        {price && <span className="price">{price}</span>}
      </div>
      {!def && <div className="flow-node-warning">Unknown node type {data.nodeType}</div>}
      {def && !def.available && <div className="flow-node-warning">Unavailable{def.unavailableReason ? `: ${def.unavailableReason}` : ""}</div>}
      <div className="flow-node-ports">
        {inputs.map((port) =>
          isComfy && isWidget(port) ? (
            <ComfyWidgetRow
              key={`in-${port.name}`}
              nodeId={id}
              port={port}
              linked={linkedInputs.includes(port.name)}
              value={data.literals[port.name]}
              invalid={invalidInputs.has(port.name)}
            />
          ) : (
            <PortRow
              key={`in-${port.name}`}
              nodeId={id}
              port={port}
              direction="in"
              linked={linkedInputs.includes(port.name)}
              literal={data.literals[port.name]}
              invalid={invalidInputs.has(port.name)}
            />
          ),
        )}
        {outputs.map((port) => (
          <PortRow key={`out-${port.name}`} nodeId={id} port={port} direction="out" linked={linkedOutputs.includes(port.name)} invalid={false} />
        ))}
      </div>
      {shownParams.length > 0 && (
        <dl className="flow-node-params">
          {shownParams.map((param) => (
            <div key={param.name}>
              <dt>{param.name}</dt>
              <dd>{summariseValue(data.params[param.name])}</dd>
            </div>
          ))}
        </dl>
      )}
      {status === "running" && (
        <div
          className="node-progress"
          role="progressbar"
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={runState?.progress !== null && runState?.progress !== undefined ? Math.round(runState.progress * 100) : undefined}
          aria-valuetext={steps ? `step ${steps.value} of ${steps.max}` : undefined}
          data-testid={`node-progress-${id}`}
        >
          <span
            className={runState?.progress === null || runState?.progress === undefined ? "indeterminate" : undefined}
            style={{ width: `${Math.round((runState?.progress ?? 0.3) * 100)}%` }}
          />
        </div>
      )}
      {status === "running" && steps && (
        <div className="node-progress-steps" data-testid={`node-progress-steps-${id}`}>
          {formatStep(steps.value)} / {formatStep(steps.max)}
          {runState?.progress !== null && runState?.progress !== undefined && <span className="muted"> · {Math.round(runState.progress * 100)}%</span>}
        </div>
      )}
      {runState?.error && (
        <div className="flow-node-run-error" data-testid={`node-run-error-${id}`}>
          {runState.error}
        </div>
      )}
      {issues && issues.length > 0 && (
        <ul className="flow-node-issues" data-testid={`node-errors-${id}`}>
          {issues.map((issue, index) => (
            <li key={index}>
              {issue.field && <strong>{issue.field.name}: </strong>}
              {issue.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export const FlowNodeView = memo(FlowNodeViewImpl);
