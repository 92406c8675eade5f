// Loading, empty and error states: every page shows one of these instead of a blank area.

import type { ReactNode } from "react";

export function Loading({ label = "Loading…", testId = "loading" }: { label?: string; testId?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite" data-testid={testId}>
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function ErrorMessage({
  message,
  onRetry,
  testId = "error-message",
}: {
  message: string | null | undefined;
  onRetry?: () => void;
  testId?: string;
}) {
  if (!message) return null;
  return (
    <div className="alert alert-error" role="alert" data-testid={testId}>
      <span>{message}</span>
      {onRetry && (
        <button type="button" className="btn btn-small" onClick={onRetry} data-testid={`${testId}-retry`}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Notice({ children, testId, tone = "info" }: { children: ReactNode; testId?: string; tone?: "info" | "success" | "warning" }) {
  return (
    <div className={`alert alert-${tone}`} role="status" data-testid={testId}>
      {children}
    </div>
  );
}

export function EmptyState({ title, children, testId = "empty-state" }: { title: string; children?: ReactNode; testId?: string }) {
  return (
    <div className="empty" data-testid={testId}>
      <p className="empty-title">{title}</p>
      {children && <div className="empty-body">{children}</div>}
    </div>
  );
}
