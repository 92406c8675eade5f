// The selected node's settings: label, params (forms generated from the node's schema), literal
// values for unlinked inputs, and the problems validation found on it.

import { useShallow } from "zustand/react/shallow";
import type { FieldSchema } from "../api/types";
import { SchemaField } from "../components/SchemaField";
import { formatPrice } from "../lib/format";
import { MEDIA_TYPES } from "../lib/schemaFields";
import { isComfyType, isWidget } from "../lib/comfyNodes";
import { displayType, isForeign, listElement, normaliseType } from "../lib/portTypes";
import type { NodeIssue } from "../lib/validationPaths";
import { useGraphStore } from "../stores/graphStore";

/** Inputs that accept a typed-in value when nothing is linked to them. A ComfyUI node's sockets (MODEL, an IMAGE
 * batch …) take only links; its widgets (numbers, texts, combos) take values. */
function acceptsLiteral(port: FieldSchema, nodeType: string): boolean {
  const type = normaliseType(port.type);
  if (isComfyType(nodeType)) return isWidget(port);
  if (isForeign(type)) return false;
  if (listElement(type) !== null) return true;
  return ["text", "number", "integer", "boolean", "json", "any"].includes(type) || MEDIA_TYPES.has(type);
}

function fieldError(issues: readonly NodeIssue[] | undefined, kind: "inputs" | "params", name: string): string | null {
  const messages = (issues ?? []).filter((issue) => issue.field?.kind === kind && issue.field.name === name).map((issue) => issue.message);
  return messages.length ? messages.join(" ") : null;
}

const SHORTCUTS: [string, string][] = [
  ["Ctrl/⌘ Z", "Undo"],
  ["Ctrl/⌘ Shift Z", "Redo"],
  ["Ctrl/⌘ C / V", "Copy / paste"],
  ["Delete", "Delete selection"],
  ["Ctrl/⌘ S", "Save draft"],
  ["Shift drag", "Box select"],
];

export function Inspector() {
  const selectedIds = useGraphStore(useShallow((state) => state.nodes.filter((node) => node.selected).map((node) => node.id)));
  const general = useGraphStore((state) => state.issues.general);
  const deleteSelection = useGraphStore((state) => state.deleteSelection);
  const copySelection = useGraphStore((state) => state.copySelection);

  return (
    <div className="inspector" data-testid="inspector">
      {general.length > 0 && (
        <div className="alert alert-error" role="alert" data-testid="graph-errors">
          <ul>
            {general.map((issue, index) => (
              <li key={index}>
                {issue.path && <code>{issue.path}</code>} {issue.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      {selectedIds.length === 1 ? (
        <NodeSettings nodeId={selectedIds[0]} />
      ) : selectedIds.length > 1 ? (
        <div className="panel-section">
          <p>
            <strong>{selectedIds.length} nodes selected.</strong>
          </p>
          <div className="button-row">
            <button type="button" className="btn btn-small" onClick={copySelection} data-testid="inspector-copy">
              Copy
            </button>
            <button type="button" className="btn btn-small btn-danger-quiet" onClick={deleteSelection} data-testid="inspector-delete">
              Delete
            </button>
          </div>
        </div>
      ) : (
        <div className="panel-section muted" data-testid="inspector-empty">
          <p>Select a node to edit its settings.</p>
          <table className="shortcuts">
            <tbody>
              {SHORTCUTS.map(([keys, action]) => (
                <tr key={keys}>
                  <td>
                    <kbd>{keys}</kbd>
                  </td>
                  <td>{action}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function NodeSettings({ nodeId }: { nodeId: string }) {
  const node = useGraphStore((state) => state.nodes.find((candidate) => candidate.id === nodeId));
  const def = useGraphStore((state) => (node ? state.catalog[node.data.nodeType] : undefined));
  const issues = useGraphStore((state) => state.issues.byNode[nodeId]);
  const links = useGraphStore(
    useShallow((state) =>
      state.edges.filter((edge) => edge.target === nodeId).map((edge) => `${edge.targetHandle}\u0000${edge.source}\u0000${edge.sourceHandle}`),
    ),
  );
  const setParam = useGraphStore((state) => state.setParam);
  const setLiteral = useGraphStore((state) => state.setLiteral);
  const setLabel = useGraphStore((state) => state.setLabel);
  const removeNodes = useGraphStore((state) => state.removeNodes);
  const removeEdges = useGraphStore((state) => state.removeEdges);
  if (!node) return null;

  const linkByInput = new Map(
    links.map((entry) => {
      const [input, source, output] = entry.split("\u0000");
      return [input, { source, output }];
    }),
  );
  const generalIssues = (issues ?? []).filter((issue) => !issue.field || issue.field.kind === "outputs");
  const price = def ? formatPrice(def.credits) : null;

  return (
    <div className="node-settings" data-testid={`inspector-node-${nodeId}`}>
      <div className="panel-section">
        <h3 className="panel-title">{def?.displayName ?? node.data.nodeType}</h3>
        <div className="muted small mono">
          {node.data.nodeType} · id {nodeId}
          {price && ` · ${price}`}
        </div>
        {def?.description && <p className="small">{def.description}</p>}
        {!def && <p className="field-error">This node type is not known to the server.</p>}
        <div className="field">
          <label htmlFor={`label-${nodeId}`}>Label</label>
          <input
            id={`label-${nodeId}`}
            type="text"
            value={node.data.label}
            placeholder={def?.displayName ?? ""}
            onChange={(event) => setLabel(nodeId, event.target.value)}
            data-testid="node-label-input"
          />
        </div>
        {generalIssues.length > 0 && (
          <ul className="issue-list" data-testid="inspector-issues">
            {generalIssues.map((issue, index) => (
              <li key={index}>{issue.message}</li>
            ))}
          </ul>
        )}
      </div>

      {def && def.params.length > 0 && (
        <fieldset className="panel-section">
          <legend>Parameters</legend>
          {def.params.map((param) => (
            <SchemaField
              key={param.name}
              schema={param}
              value={node.data.params[param.name]}
              onChange={(value) => setParam(nodeId, param.name, value)}
              error={fieldError(issues, "params", param.name)}
              hint={param.type}
              testId={`param-${nodeId}-${param.name}`}
            />
          ))}
        </fieldset>
      )}

      {def && def.inputs.length > 0 && (
        <fieldset className="panel-section">
          <legend>Inputs</legend>
          {def.inputs.map((port) => {
            const link = linkByInput.get(port.name);
            const error = fieldError(issues, "inputs", port.name);
            if (link) {
              return (
                <div key={port.name} className={`field linked-input${error ? " field-invalid" : ""}`} data-testid={`input-${nodeId}-${port.name}-link`}>
                  <span className="field-label">
                    {port.name} <span className="field-hint">{port.type}</span>
                  </span>
                  <span className="link-chip">
                    ← {link.source}.{link.output}
                    <button
                      type="button"
                      className="link-remove"
                      aria-label={`Unlink ${port.name}`}
                      onClick={() => removeEdges([`${link.source}:${link.output}->${nodeId}:${port.name}`])}
                      data-testid={`input-${nodeId}-${port.name}-unlink`}
                    >
                      ×
                    </button>
                  </span>
                  {error && <span className="field-error">{error}</span>}
                </div>
              );
            }
            if (!acceptsLiteral(port, node.data.nodeType)) {
              return (
                <div key={port.name} className={`field${error ? " field-invalid" : ""}`}>
                  <span className="field-label">
                    {port.name} <span className="field-hint">{displayType(port.type)}</span>
                  </span>
                  <span className="muted small">Link an output to this input{port.required ? " (required)" : ""}.</span>
                  {error && <span className="field-error">{error}</span>}
                </div>
              );
            }
            return (
              <SchemaField
                key={port.name}
                schema={port}
                value={node.data.literals[port.name]}
                onChange={(value) => setLiteral(nodeId, port.name, value)}
                error={error}
                hint={`${port.type} · or link an output`}
                testId={`input-${nodeId}-${port.name}`}
              />
            );
          })}
        </fieldset>
      )}

      {def && def.outputs.length > 0 && (
        <div className="panel-section">
          <h4 className="section-label">Outputs</h4>
          <ul className="plain-list small">
            {def.outputs.map((port) => (
              <li key={port.name}>
                {port.name} <span className="muted">{displayType(port.type)}</span>
              </li>
            ))}
          </ul>
        </div>
      )}

      <div className="panel-section">
        <button type="button" className="btn btn-small btn-danger-quiet" onClick={() => removeNodes([nodeId])} data-testid="inspector-delete-node">
          Delete node
        </button>
      </div>
    </div>
  );
}
