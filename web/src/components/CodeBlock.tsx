import { useState } from "react";

export function CopyButton({ text, testId, label = "Copy" }: { text: string; testId: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="btn btn-small"
      data-testid={testId}
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setCopied(true);
          setTimeout(() => setCopied(false), 1500);
        } catch {
          setCopied(false);
        }
      }}
    >
      {copied ? "Copied" : label}
    </button>
  );
}

export function CodeBlock({ code, testId, label }: { code: string; testId: string; label?: string }) {
  return (
    <div className="code-block">
      <div className="code-block-bar">
        {label && <span className="muted">{label}</span>}
        <CopyButton text={code} testId={`${testId}-copy`} />
      </div>
      <pre data-testid={testId}>
        <code>{code}</code>
      </pre>
    </div>
  );
}
