// One form field generated from a schema {name, type, required, default, constraints}:
// text, long text, number/integer with min/max, enum select, boolean checkbox, JSON, media upload.

import { useEffect, useId, useState, type ReactNode } from "react";
import type { FieldSchema } from "../api/types";
import { describeError } from "../api/client";
import { uploads } from "../api/endpoints";
import { fieldKind, fieldLabel, mediaAccept, parseNumber } from "../lib/schemaFields";

export interface SchemaFieldProps {
  schema: FieldSchema;
  value: unknown;
  onChange: (value: unknown) => void;
  testId: string;
  error?: string | null;
  disabled?: boolean;
  /** Shown under the label, e.g. the port type. */
  hint?: string;
}

function jsonText(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

export function SchemaField({ schema, value, onChange, testId, error, disabled, hint }: SchemaFieldProps) {
  const id = useId();
  const kind = fieldKind(schema);
  const label = fieldLabel(schema);
  const errorId = `${id}-error`;
  const describedBy = error ? errorId : undefined;
  const { min, max, step } = schema.constraints ?? {};
  const placeholder = schema.default !== undefined && schema.default !== null ? `Default: ${jsonText(schema.default)}` : undefined;

  let control: ReactNode;
  switch (kind) {
    case "boolean":
      return (
        <div className={`field field-check${error ? " field-invalid" : ""}`}>
          <input
            id={id}
            type="checkbox"
            checked={value === undefined ? schema.default === true : value === true}
            disabled={disabled}
            onChange={(event) => onChange(event.target.checked)}
            aria-invalid={!!error}
            aria-describedby={describedBy}
            data-testid={testId}
          />
          <label htmlFor={id}>
            {label}
            {schema.required && <span className="required" aria-hidden="true"> *</span>}
          </label>
          {hint && <span className="field-hint">{hint}</span>}
          {error && <span id={errorId} className="field-error" data-testid={`${testId}-error`}>{error}</span>}
        </div>
      );
    case "enum": {
      const options = schema.constraints?.enum ?? [];
      const index = options.findIndex((option) => option === value);
      control = (
        <select
          id={id}
          value={index >= 0 ? String(index) : ""}
          disabled={disabled}
          onChange={(event) => onChange(event.target.value === "" ? undefined : options[Number(event.target.value)])}
          aria-invalid={!!error}
          aria-describedby={describedBy}
          data-testid={testId}
        >
          <option value="">{schema.default !== undefined ? `Default (${String(schema.default)})` : "Choose…"}</option>
          {options.map((option, i) => (
            <option key={i} value={String(i)}>
              {String(option)}
            </option>
          ))}
        </select>
      );
      break;
    }
    case "number":
    case "integer":
      control = (
        <input
          id={id}
          type="number"
          inputMode={kind === "integer" ? "numeric" : "decimal"}
          min={typeof min === "number" ? min : undefined}
          max={typeof max === "number" ? max : undefined}
          step={typeof step === "number" ? step : kind === "integer" ? 1 : "any"}
          value={typeof value === "number" && !Number.isNaN(value) ? String(value) : ""}
          placeholder={placeholder}
          disabled={disabled}
          onChange={(event) => onChange(parseNumber(event.target.value))}
          aria-invalid={!!error}
          aria-describedby={describedBy}
          data-testid={testId}
        />
      );
      break;
    case "json":
      control = <JsonInput id={id} schema={schema} value={value} onChange={onChange} disabled={disabled} testId={testId} describedBy={describedBy} />;
      break;
    case "media":
      control = <MediaInput id={id} schema={schema} value={value} onChange={onChange} disabled={disabled} testId={testId} describedBy={describedBy} />;
      break;
    case "longtext":
      control = (
        <textarea
          id={id}
          rows={3}
          value={typeof value === "string" ? value : value === undefined ? "" : String(value)}
          placeholder={placeholder}
          disabled={disabled}
          onChange={(event) => onChange(event.target.value === "" ? undefined : event.target.value)}
          aria-invalid={!!error}
          aria-describedby={describedBy}
          data-testid={testId}
        />
      );
      break;
    default:
      control = (
        <input
          id={id}
          type="text"
          value={typeof value === "string" ? value : value === undefined ? "" : String(value)}
          placeholder={placeholder}
          maxLength={typeof max === "number" ? max : undefined}
          disabled={disabled}
          onChange={(event) => onChange(event.target.value === "" ? undefined : event.target.value)}
          aria-invalid={!!error}
          aria-describedby={describedBy}
          data-testid={testId}
        />
      );
  }

  const range =
    (kind === "number" || kind === "integer") && (typeof min === "number" || typeof max === "number")
      ? `${typeof min === "number" ? min : "−∞"} – ${typeof max === "number" ? max : "∞"}`
      : null;

  return (
    <div className={`field${error ? " field-invalid" : ""}`}>
      <label htmlFor={id}>
        {label}
        {schema.required && <span className="required" aria-hidden="true"> *</span>}
        {(hint || range) && <span className="field-hint">{[hint, range].filter(Boolean).join(" · ")}</span>}
      </label>
      {control}
      {schema.description && <span className="field-help">{schema.description}</span>}
      {error && <span id={errorId} className="field-error" data-testid={`${testId}-error`}>{error}</span>}
    </div>
  );
}

function JsonInput(props: {
  id: string;
  schema: FieldSchema;
  value: unknown;
  onChange: (value: unknown) => void;
  disabled?: boolean;
  testId: string;
  describedBy?: string;
}) {
  const { id, schema, value, onChange, disabled, testId, describedBy } = props;
  const [text, setText] = useState(() => jsonText(value));
  const [invalid, setInvalid] = useState(false);
  // Follow outside changes (undo, another node selected) unless the text already means that value.
  useEffect(() => {
    setText((current) => {
      try {
        if (current.trim() !== "" && JSON.stringify(JSON.parse(current)) === JSON.stringify(value)) return current;
      } catch {
        if (current === value) return current;
      }
      return jsonText(value);
    });
  }, [value]);
  const acceptsPlainText = schema.type.trim().toLowerCase() === "any";
  return (
    <>
      <textarea
        id={id}
        rows={3}
        className="mono"
        value={text}
        disabled={disabled}
        spellCheck={false}
        aria-invalid={invalid}
        aria-describedby={describedBy}
        data-testid={testId}
        onChange={(event) => {
          const next = event.target.value;
          setText(next);
          if (next.trim() === "") {
            setInvalid(false);
            onChange(undefined);
            return;
          }
          try {
            onChange(JSON.parse(next));
            setInvalid(false);
          } catch {
            if (acceptsPlainText) {
              onChange(next);
              setInvalid(false);
            } else {
              setInvalid(true);
            }
          }
        }}
      />
      {invalid && <span className="field-error" data-testid={`${testId}-json-error`}>Not valid JSON yet.</span>}
    </>
  );
}

function MediaInput(props: {
  id: string;
  schema: FieldSchema;
  value: unknown;
  onChange: (value: unknown) => void;
  disabled?: boolean;
  testId: string;
  describedBy?: string;
}) {
  const { id, schema, value, onChange, disabled, testId, describedBy } = props;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [preview, setPreview] = useState<string | null>(null);
  const text = typeof value === "string" ? value : "";
  const previewUrl = preview ?? (/^(https?:|data:image)/.test(text) ? text : null);
  const isImage = ["image", "mask"].includes(schema.type.toLowerCase());

  return (
    <div className="media-input">
      <input
        id={id}
        type="text"
        value={text}
        placeholder="fileId, https:// URL or data: URI"
        disabled={disabled || busy}
        onChange={(event) => {
          setPreview(null);
          onChange(event.target.value === "" ? undefined : event.target.value);
        }}
        aria-describedby={describedBy}
        data-testid={testId}
      />
      <label className="btn btn-small upload-button">
        {busy ? "Uploading…" : "Upload"}
        <input
          type="file"
          className="visually-hidden"
          accept={mediaAccept(schema.type)}
          disabled={disabled || busy}
          aria-label={`Upload ${fieldLabel(schema)}`}
          data-testid={`${testId}-upload`}
          onChange={async (event) => {
            const file = event.target.files?.[0];
            event.target.value = "";
            if (!file) return;
            setBusy(true);
            setError(null);
            try {
              const uploaded = await uploads.upload(file);
              setPreview(uploaded.url);
              onChange(uploaded.fileId);
            } catch (reason) {
              setError(describeError(reason));
            } finally {
              setBusy(false);
            }
          }}
        />
      </label>
      {isImage && previewUrl && <img className="media-preview" src={previewUrl} alt={`${fieldLabel(schema)} preview`} data-testid={`${testId}-preview`} />}
      {error && <span className="field-error" role="alert" data-testid={`${testId}-upload-error`}>{error}</span>}
    </div>
  );
}
