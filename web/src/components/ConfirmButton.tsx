// A destructive action that asks twice in place (no window.confirm, which browser tests must dismiss).

import { useEffect, useState } from "react";

export function ConfirmButton({
  label,
  confirmLabel = "Confirm",
  onConfirm,
  testId,
  disabled,
  ariaLabel,
}: {
  label: string;
  confirmLabel?: string;
  onConfirm: () => void | Promise<void>;
  testId: string;
  disabled?: boolean;
  ariaLabel?: string;
}) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!asking) return;
    const timer = setTimeout(() => setAsking(false), 5000);
    return () => clearTimeout(timer);
  }, [asking]);

  if (!asking) {
    return (
      <button type="button" className="btn btn-small btn-danger-quiet" disabled={disabled} onClick={() => setAsking(true)} data-testid={testId} aria-label={ariaLabel}>
        {label}
      </button>
    );
  }
  return (
    <span className="confirm">
      <button
        type="button"
        className="btn btn-small btn-danger"
        disabled={busy}
        data-testid={`${testId}-confirm`}
        onClick={async () => {
          setBusy(true);
          try {
            await onConfirm();
          } finally {
            setBusy(false);
            setAsking(false);
          }
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" className="btn btn-small" onClick={() => setAsking(false)} data-testid={`${testId}-cancel`}>
        Cancel
      </button>
    </span>
  );
}
