import type { ExecutionStatus } from "../api/types";

export function StatusBadge({ status, testId }: { status: ExecutionStatus | string; testId?: string }) {
  return (
    <span className={`status status-${String(status).toLowerCase()}`} data-testid={testId} data-status={status}>
      {String(status).charAt(0) + String(status).slice(1).toLowerCase()}
    </span>
  );
}
