// "Import ComfyUI workflow": paste an export (API or UI format) or upload a .json / a PNG that ComfyUI saved;
// the server imports it as a draft (POST /workflows/import/comfyui) and says what it exposed (`importNotes`).
// The review step lets the user rename, drop or add exposed inputs and outputs — applied by re-importing into the
// same draft with explicit `inputs`/`outputs` mappings (PUT /workflows/{id}/import/comfyui) — then opens it.
// Discarding deletes the draft the import made.

import { useEffect, useMemo, useRef, useState, type FormEvent, type ReactNode } from "react";
import { useNavigate } from "react-router-dom";
import { ApiError, describeError } from "../api/client";
import { workflows as workflowsApi } from "../api/endpoints";
import type { ComfyImportBody, ComfyImportResult, NodeDef } from "../api/types";
import {
  changedSides,
  inputCandidates,
  inputMappings,
  isPngFile,
  nameFromFile,
  nameProblems,
  outputCandidates,
  outputMappings,
  parseExport,
  readExposure,
  suggestName,
  summarise,
  type ExposedInputRow,
  type ExposedOutputRow,
  type Exposure,
  type ParsedExport,
} from "../lib/comfyImport";
import { displayType } from "../lib/portTypes";
import { useCatalogStore } from "../stores/catalogStore";

type Source = { kind: "json"; workflow: Record<string, unknown> } | { kind: "png"; file: File };

interface Review {
  result: ComfyImportResult;
  source: Source;
  /** What the server exposed on the last (re-)import: the baseline for "changed". */
  exposure: Exposure;
}

const DEFAULT_NAME = "ComfyUI workflow";

function inputTypeLabel(inputType: string): string {
  return inputType.replace(/^input\./, "");
}

/** An error of the import, explained: 503 no ComfyUI yet, 422 UI format not convertible, validation details. */
export function ImportError({ error, testId = "comfy-import-error" }: { error: unknown; testId?: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // (a block: scrollIntoView returns a Promise in recent Chromium, which must not become the effect's cleanup)
    box.current?.scrollIntoView?.({ block: "nearest" });
  }, [error]);
  if (!error) return null;
  const api = error instanceof ApiError ? error : null;
  let title = "The import failed.";
  let hint: ReactNode = null;
  if (api?.code === "comfyui_unavailable") {
    title = "No ComfyUI server is available yet.";
    hint = "Imports check node types against the ComfyUI servers nodeloom is connected to, and none has answered yet. Try again in a moment, or ask the operator to check NODELOOM_COMFYUI_URLS (nodeloom comfyui status).";
  } else if (api?.code === "comfyui_ui_unsupported") {
    title = "This UI-format workflow cannot be converted.";
    hint = "Export it from ComfyUI with Workflow → Export (API) instead, or remove the node named above (subgraphs and node types the ComfyUI servers do not have cannot be converted).";
  } else if (api?.status === 422) {
    title = "The workflow was refused.";
  } else if (api?.status === 413) {
    title = "The file is too large.";
  } else if (api?.status === 403) {
    title = "You may not import workflows.";
  }
  const message = describeError(error);
  // a detail that repeats the message adds only its path
  const repeated = (api?.details ?? []).filter((detail) => detail.message === message && detail.path);
  const details = (api?.details ?? []).filter((detail) => detail.message !== message);
  return (
    <div ref={box} className="alert alert-error comfy-import-error" role="alert" data-testid={testId} data-code={api?.code ?? "error"} data-status={api?.status ?? 0}>
      <div>
        <strong>{title}</strong> <span data-testid={`${testId}-message`}>{message}</span>
        {repeated.map((detail, index) => (
          <span key={index} className="small">
            {" "}
            (at <code>{detail.path}</code>)
          </span>
        ))}
        {details.length > 0 && (
          <ul className="comfy-import-details" data-testid={`${testId}-details`}>
            {details.map((detail, index) => (
              <li key={index}>
                {detail.path && <code>{detail.path}</code>} {detail.message}
              </li>
            ))}
          </ul>
        )}
        {hint && <p className="small comfy-import-hint">{hint}</p>}
        {api?.code && <div className="muted small mono">{api.status ? `${api.status} ` : ""}{api.code}</div>}
      </div>
    </div>
  );
}

export function ComfyImportDialog({ onClose }: { onClose: () => void }) {
  const [review, setReview] = useState<Review | null>(null);
  const dialogRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    dialogRef.current?.querySelector<HTMLElement>("[data-autofocus]")?.focus();
  }, [review === null]);

  return (
    <div
      className="modal-backdrop"
      data-testid="comfy-import-backdrop"
      onKeyDown={(event) => {
        // Escape leaves the first step; once a draft exists, leaving is the explicit Discard or Open.
        if (event.key === "Escape" && !review) onClose();
      }}
    >
      <div
        ref={dialogRef}
        className="modal comfy-import"
        role="dialog"
        aria-modal="true"
        aria-labelledby="comfy-import-title"
        data-testid="comfy-import-dialog"
        data-stage={review ? "review" : "source"}
      >
        {review ? (
          <ReviewStep review={review} setReview={setReview} onClose={onClose} />
        ) : (
          <SourceStep onImported={setReview} onClose={onClose} />
        )}
      </div>
    </div>
  );
}

// ---- step 1: the export --------------------------------------------------------------------------------------

function SourceStep({ onImported, onClose }: { onImported: (review: Review) => void; onClose: () => void }) {
  const [mode, setMode] = useState<"paste" | "file">("paste");
  const [name, setName] = useState(DEFAULT_NAME);
  const [nameTouched, setNameTouched] = useState(false);
  const [description, setDescription] = useState("");
  const [text, setText] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [fileParsed, setFileParsed] = useState<ParsedExport | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const loadCatalog = useCatalogStore((state) => state.load);

  const pasted = useMemo(() => (text.trim() ? parseExport(text) : null), [text]);
  const parsed = mode === "paste" ? pasted : fileParsed;

  async function chooseFile(chosen: File | null) {
    setFile(chosen);
    setFileParsed(null);
    setError(null);
    if (!chosen) return;
    if (!nameTouched) setName(nameFromFile(chosen.name));
    if (!isPngFile(chosen)) setFileParsed(parseExport(await chosen.text()));
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    let source: Source;
    if (mode === "file") {
      if (!file) return setError(new Error("Choose a .json export or a PNG that ComfyUI saved."));
      if (isPngFile(file)) source = { kind: "png", file };
      else {
        const read = fileParsed ?? parseExport(await file.text());
        if (!read.ok) return setError(new Error(read.error));
        source = { kind: "json", workflow: read.workflow };
      }
    } else {
      const read = parseExport(text);
      if (!read.ok) return setError(new Error(read.error));
      source = { kind: "json", workflow: read.workflow };
    }
    setBusy(true);
    try {
      const result = await workflowsApi.importComfyui(requestBody(source, { name: name.trim(), description }));
      const defs = await loadCatalog({ force: true });
      onImported({ result, source, exposure: readExposure(result.graph, catalogOf(defs)) });
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} data-testid="comfy-import-form">
      <div className="modal-header">
        <h2 id="comfy-import-title">Import ComfyUI workflow</h2>
        <button type="button" className="btn btn-small btn-ghost" onClick={onClose} aria-label="Close" data-testid="comfy-import-close">
          ×
        </button>
      </div>
      <div className="modal-body">
        <p className="muted small">
          Paste what ComfyUI exports (Workflow → Export (API), or Save / Export in the UI format), or upload the .json
          file or a PNG that ComfyUI saved. You can review what it exposes as API inputs and outputs before opening it.
        </p>
        <div className="form-grid">
          <div className="field">
            <label htmlFor="comfy-import-name">Name</label>
            <input
              id="comfy-import-name"
              type="text"
              value={name}
              maxLength={200}
              required
              onChange={(event) => {
                setName(event.target.value);
                setNameTouched(true);
              }}
              data-testid="comfy-import-name"
            />
          </div>
          <div className="field">
            <label htmlFor="comfy-import-description">
              Description <span className="field-hint">optional</span>
            </label>
            <input
              id="comfy-import-description"
              type="text"
              value={description}
              maxLength={5000}
              onChange={(event) => setDescription(event.target.value)}
              data-testid="comfy-import-description"
            />
          </div>
        </div>
        <div className="segmented" role="tablist" aria-label="Where the workflow comes from">
          <button type="button" role="tab" aria-selected={mode === "paste"} className={mode === "paste" ? "active" : ""} onClick={() => setMode("paste")} data-testid="comfy-import-mode-paste">
            Paste JSON
          </button>
          <button type="button" role="tab" aria-selected={mode === "file"} className={mode === "file" ? "active" : ""} onClick={() => setMode("file")} data-testid="comfy-import-mode-file">
            Upload file
          </button>
        </div>
        {mode === "paste" ? (
          <div className="field">
            <label htmlFor="comfy-import-json">Workflow JSON</label>
            <textarea
              id="comfy-import-json"
              className="mono comfy-import-json"
              rows={12}
              spellCheck={false}
              placeholder={'{"3": {"class_type": "KSampler", "inputs": {…}}, …}'}
              value={text}
              onChange={(event) => setText(event.target.value)}
              data-autofocus
              data-testid="comfy-import-json"
            />
          </div>
        ) : (
          <div className="field">
            <label htmlFor="comfy-import-file">File (.json or .png)</label>
            <input
              id="comfy-import-file"
              type="file"
              accept=".json,.png,application/json,image/png"
              onChange={(event) => void chooseFile(event.target.files?.[0] ?? null)}
              data-testid="comfy-import-file"
            />
            {file && isPngFile(file) && (
              <span className="field-help" data-testid="comfy-import-detected" data-shape="png">
                A PNG: the server reads the workflow ComfyUI embedded in it.
              </span>
            )}
          </div>
        )}
        {parsed && (parsed.ok ? (
          <p className="field-help" data-testid="comfy-import-detected" data-shape={parsed.shape}>
            {parsed.shape === "api" ? "API format" : "UI (save) format, converted on the server as ComfyUI's frontend would queue it"} ·{" "}
            {parsed.nodeCount} node{parsed.nodeCount === 1 ? "" : "s"}
            {parsed.unwrapped && ` · taken from ${parsed.unwrapped}`}
          </p>
        ) : (
          <p className="field-error" data-testid="comfy-import-parse-error">
            {parsed.error}
          </p>
        ))}
        <ImportError error={error} />
      </div>
      <div className="modal-footer">
        <button type="button" className="btn" onClick={onClose} data-testid="comfy-import-cancel">
          Cancel
        </button>
        <button type="submit" className="btn btn-primary" disabled={busy || !name.trim()} data-testid="comfy-import-submit">
          {busy ? "Importing…" : "Import"}
        </button>
      </div>
    </form>
  );
}

function catalogOf(defs: readonly NodeDef[]): Record<string, NodeDef> {
  const catalog: Record<string, NodeDef> = {};
  for (const def of defs) catalog[def.type] = def;
  return catalog;
}

function requestBody(
  source: Source,
  fields: Pick<ComfyImportBody, "name" | "description" | "inputs" | "outputs">,
): ComfyImportBody | FormData {
  if (source.kind === "json") {
    const body: ComfyImportBody = { workflow: source.workflow };
    if (fields.name !== undefined) body.name = fields.name;
    if (fields.description) body.description = fields.description;
    if (fields.inputs) body.inputs = fields.inputs;
    if (fields.outputs) body.outputs = fields.outputs;
    return body;
  }
  const form = new FormData();
  if (fields.name !== undefined) form.append("name", fields.name);
  if (fields.description) form.append("description", fields.description);
  if (fields.inputs) form.append("inputs", JSON.stringify(fields.inputs));
  if (fields.outputs) form.append("outputs", JSON.stringify(fields.outputs));
  form.append("file", source.file, source.file.name);
  return form;
}

// ---- step 2: review what is exposed --------------------------------------------------------------------------

type InputRow = ExposedInputRow & { key: string };
type OutputRow = ExposedOutputRow & { key: string };

function keyed(exposure: Exposure): { inputs: InputRow[]; outputs: OutputRow[] } {
  return {
    inputs: exposure.inputs.map((row) => ({ ...row, key: `${row.node}-${row.input}` })),
    outputs: exposure.outputs.map((row) => ({ ...row, key: row.node })),
  };
}

function ReviewStep({ review, setReview, onClose }: { review: Review; setReview: (review: Review) => void; onClose: () => void }) {
  const navigate = useNavigate();
  const defs = useCatalogStore((state) => state.defs);
  const catalog = useMemo(() => catalogOf(defs), [defs]);
  const [rows, setRows] = useState(() => keyed(review.exposure));
  const [busy, setBusy] = useState<null | "apply" | "open" | "discard">(null);
  const [error, setError] = useState<unknown>(null);
  const [addInput, setAddInput] = useState("");
  const [addInputName, setAddInputName] = useState("");
  const [addOutput, setAddOutput] = useState("");
  const [addOutputName, setAddOutputName] = useState("");
  const { result } = review;

  const inputs = useMemo(() => inputCandidates(result.graph, catalog), [result.graph, catalog]);
  const outputs = useMemo(() => outputCandidates(result.graph), [result.graph]);
  const freeInputs = inputs.filter((c) => !rows.inputs.some((row) => row.node === c.node && row.input === c.input));
  const freeOutputs = outputs.filter((c) => !rows.outputs.some((row) => row.node === c.node));
  const inputProblems = nameProblems(rows.inputs.map((row) => row.name));
  const outputProblems = nameProblems(rows.outputs.map((row) => row.name));
  const valid = Object.keys(inputProblems).length === 0 && Object.keys(outputProblems).length === 0;
  const changed = changedSides(review.exposure, rows);
  const dirty = changed.inputs || changed.outputs;
  const comfyCount = result.graph.nodes.filter((node) => node.type.startsWith("comfyui.")).length;
  const titles = new Map(result.graph.nodes.map((node) => [node.id, node.label || node.type.replace(/^comfyui\./, "")]));

  async function apply(): Promise<boolean> {
    if (!dirty) return true;
    if (!valid) {
      setError(new Error("Fix the names marked below first."));
      return false;
    }
    setError(null);
    const body = requestBody(review.source, {
      inputs: changed.inputs ? inputMappings(rows.inputs) : undefined,
      outputs: changed.outputs ? outputMappings(rows.outputs) : undefined,
    });
    try {
      const next = await workflowsApi.reimportComfyui(result.id, body);
      const exposure = readExposure(next.graph, catalog);
      // the rows restart from what the server now exposes; set here, with the review, and not in an effect on
      // `review`: an effect runs after the first paint, and would undo an edit made before it ran
      setRows(keyed(exposure));
      setReview({ result: next, source: review.source, exposure });
      return true;
    } catch (caught) {
      setError(caught);
      return false;
    }
  }

  async function run(kind: "apply" | "open" | "discard") {
    setBusy(kind);
    try {
      if (kind === "discard") {
        try {
          await workflowsApi.remove(result.id);
        } catch (caught) {
          if (!(caught instanceof ApiError && caught.status === 404)) {
            setError(caught);
            return;
          }
        }
        onClose();
        return;
      }
      const ok = await apply();
      if (ok && kind === "open") navigate(`/workflows/${result.id}`);
    } finally {
      setBusy(null);
    }
  }

  function renameInput(key: string, name: string) {
    setRows((current) => ({ ...current, inputs: current.inputs.map((row) => (row.key === key ? { ...row, name } : row)) }));
  }
  function renameOutput(key: string, name: string) {
    setRows((current) => ({ ...current, outputs: current.outputs.map((row) => (row.key === key ? { ...row, name } : row)) }));
  }

  function chooseInputCandidate(value: string) {
    setAddInput(value);
    const candidate = freeInputs.find((c) => `${c.node}\u0000${c.input}` === value);
    if (candidate) setAddInputName(suggestName(candidate.input, rows.inputs.map((row) => row.name)));
  }
  function chooseOutputCandidate(value: string) {
    setAddOutput(value);
    const candidate = freeOutputs.find((c) => c.node === value);
    if (candidate) setAddOutputName(suggestName(candidate.type.replace(/^list<(.*)>$/, "$1"), rows.outputs.map((row) => row.name)));
  }

  function addInputRow() {
    const candidate = freeInputs.find((c) => `${c.node}\u0000${c.input}` === addInput);
    if (!candidate) return;
    const row: InputRow = {
      key: `${candidate.node}-${candidate.input}`,
      name: addInputName.trim() || suggestName(candidate.input, rows.inputs.map((r) => r.name)),
      node: candidate.node,
      input: candidate.input,
      inputType: displayType(candidate.type),
      default: candidate.value,
      required: false,
      fixed: false,
    };
    setRows((current) => ({ ...current, inputs: [...current.inputs, row] }));
    setAddInput("");
    setAddInputName("");
  }
  function addOutputRow() {
    const candidate = freeOutputs.find((c) => c.node === addOutput);
    if (!candidate) return;
    const row: OutputRow = {
      key: candidate.node,
      name: addOutputName.trim() || suggestName(candidate.type, rows.outputs.map((r) => r.name)),
      node: candidate.node,
      type: candidate.type,
    };
    setRows((current) => ({ ...current, outputs: [...current.outputs, row] }));
    setAddOutput("");
    setAddOutputName("");
  }

  return (
    <div data-testid="comfy-import-review" data-workflow-id={result.id}>
      <div className="modal-header">
        <h2 id="comfy-import-title">Review the import</h2>
        <button type="button" className="btn btn-small btn-ghost" onClick={() => void run("discard")} aria-label="Discard the import" disabled={busy !== null} data-testid="comfy-import-close">
          ×
        </button>
      </div>
      <div className="modal-body">
        <p className="small">
          <strong>{result.name}</strong> is imported as a draft (<span className="mono">{result.id}</span>) with{" "}
          <span data-testid="comfy-import-node-count">{comfyCount}</span> ComfyUI node{comfyCount === 1 ? "" : "s"}. Rename what
          callers send and get back, drop an input, or expose another ComfyUI value; then open it on the canvas.
        </p>

        <h3 className="section-label">Inputs</h3>
        {rows.inputs.length === 0 ? (
          <p className="muted small" data-testid="comfy-import-no-inputs">
            No input: the workflow runs with the values it was saved with.
          </p>
        ) : (
          <table className="table comfy-import-table" data-testid="comfy-import-inputs">
            <thead>
              <tr>
                <th>API name</th>
                <th>ComfyUI input</th>
                <th>Type</th>
                <th>Default</th>
                <th className="actions-col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.inputs.map((row, index) => (
                <tr key={row.key} data-testid="comfy-import-input-row" data-node={row.node} data-input={row.input}>
                  <td>
                    <input
                      type="text"
                      className={inputProblems[index] ? "input-invalid" : undefined}
                      aria-label={`API name of node ${row.node} input ${row.input}`}
                      aria-invalid={!!inputProblems[index]}
                      value={row.name}
                      maxLength={80}
                      onChange={(event) => renameInput(row.key, event.target.value)}
                      data-testid={`comfy-import-input-${row.node}-${row.input}`}
                    />
                    {inputProblems[index] && <span className="field-error">{inputProblems[index]}</span>}
                  </td>
                  <td>
                    <span className="mono">#{row.node}</span> {titles.get(row.node)} · <span className="mono">{row.input}</span>
                  </td>
                  <td className="mono small">
                    {inputTypeLabel(row.inputType)}
                    {row.required && <span className="muted"> · required</span>}
                  </td>
                  <td className="small">{summarise(row.default)}</td>
                  <td className="actions-col">
                    <button
                      type="button"
                      className="btn btn-small btn-danger-quiet"
                      disabled={row.fixed}
                      title={row.fixed ? "A loader's file always comes from the caller: it stays an input." : "Keep the workflow's value instead"}
                      onClick={() => setRows((current) => ({ ...current, inputs: current.inputs.filter((other) => other.key !== row.key) }))}
                      data-testid={`comfy-import-input-${row.node}-${row.input}-remove`}
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {freeInputs.length > 0 && (
          <div className="inline comfy-import-add">
            <select aria-label="ComfyUI input to expose" value={addInput} onChange={(event) => chooseInputCandidate(event.target.value)} data-testid="comfy-import-add-input">
              <option value="">Expose another ComfyUI input…</option>
              {groupByNode(freeInputs).map(([node, items]) => (
                <optgroup key={node} label={`#${node} ${items[0].title}${items[0].title !== items[0].classType ? ` (${items[0].classType})` : ""}`}>
                  {items.map((c) => (
                    <option key={c.input} value={`${c.node}\u0000${c.input}`}>
                      {c.input}
                      {c.value !== undefined ? ` = ${summarise(c.value, 30)}` : ""}
                    </option>
                  ))}
                </optgroup>
              ))}
            </select>
            <input
              type="text"
              aria-label="API name of the new input"
              placeholder="API name"
              value={addInputName}
              onChange={(event) => setAddInputName(event.target.value)}
              data-testid="comfy-import-add-input-name"
            />
            <button type="button" className="btn btn-small" disabled={!addInput} onClick={addInputRow} data-testid="comfy-import-add-input-submit">
              Add input
            </button>
          </div>
        )}

        <h3 className="section-label">Outputs</h3>
        {rows.outputs.length === 0 ? (
          <p className="muted small" data-testid="comfy-import-no-outputs">
            No output: a run returns nothing. Expose an output node below.
          </p>
        ) : (
          <table className="table comfy-import-table" data-testid="comfy-import-outputs">
            <thead>
              <tr>
                <th>API name</th>
                <th>ComfyUI node</th>
                <th>Type</th>
                <th className="actions-col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.outputs.map((row, index) => (
                <tr key={row.key} data-testid="comfy-import-output-row" data-node={row.node}>
                  <td>
                    <input
                      type="text"
                      className={outputProblems[index] ? "input-invalid" : undefined}
                      aria-label={`API name of the output of node ${row.node}`}
                      aria-invalid={!!outputProblems[index]}
                      value={row.name}
                      maxLength={80}
                      onChange={(event) => renameOutput(row.key, event.target.value)}
                      data-testid={`comfy-import-output-${row.node}`}
                    />
                    {outputProblems[index] && <span className="field-error">{outputProblems[index]}</span>}
                  </td>
                  <td>
                    <span className="mono">#{row.node}</span> {titles.get(row.node)}
                  </td>
                  <td className="mono small">{row.type}</td>
                  <td className="actions-col">
                    <button
                      type="button"
                      className="btn btn-small btn-danger-quiet"
                      onClick={() => setRows((current) => ({ ...current, outputs: current.outputs.filter((other) => other.key !== row.key) }))}
                      data-testid={`comfy-import-output-${row.node}-remove`}
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {freeOutputs.length > 0 && (
          <div className="inline comfy-import-add">
            <select aria-label="ComfyUI output node to expose" value={addOutput} onChange={(event) => chooseOutputCandidate(event.target.value)} data-testid="comfy-import-add-output">
              <option value="">Expose another output node…</option>
              {freeOutputs.map((c) => (
                <option key={c.node} value={c.node}>
                  #{c.node} {c.title} ({c.type})
                </option>
              ))}
            </select>
            <input
              type="text"
              aria-label="API name of the new output"
              placeholder="API name"
              value={addOutputName}
              onChange={(event) => setAddOutputName(event.target.value)}
              data-testid="comfy-import-add-output-name"
            />
            <button type="button" className="btn btn-small" disabled={!addOutput} onClick={addOutputRow} data-testid="comfy-import-add-output-submit">
              Add output
            </button>
          </div>
        )}

        <details className="comfy-import-notes-box" open>
          <summary>What the import did ({result.importNotes.length})</summary>
          <ul className="plain-list small comfy-import-notes" data-testid="comfy-import-notes">
            {result.importNotes.map((note, index) => (
              <li key={index}>{note}</li>
            ))}
          </ul>
        </details>
        <ImportError error={error} />
      </div>
      <div className="modal-footer">
        <button type="button" className="btn btn-danger-quiet" onClick={() => void run("discard")} disabled={busy !== null} data-testid="comfy-import-discard">
          {busy === "discard" ? "Discarding…" : "Discard"}
        </button>
        <span className="toolbar-spacer" />
        {dirty && (
          <span className="muted small" data-testid="comfy-import-pending">
            Changes not applied yet
          </span>
        )}
        <button type="button" className="btn" onClick={() => void run("apply")} disabled={busy !== null || !dirty || !valid} data-testid="comfy-import-apply">
          {busy === "apply" ? "Applying…" : "Apply changes"}
        </button>
        <button type="button" className="btn btn-primary" onClick={() => void run("open")} disabled={busy !== null || !valid} data-testid="comfy-import-open-workflow">
          {busy === "open" ? "Saving…" : dirty ? "Apply and open" : "Open workflow"}
        </button>
      </div>
    </div>
  );
}

function groupByNode<T extends { node: string }>(items: readonly T[]): [string, T[]][] {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(item.node, [...(groups.get(item.node) ?? []), item]);
  return [...groups.entries()];
}
