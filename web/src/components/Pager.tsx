import type { CursorPager } from "../hooks/useCursorPager";

export function Pager({ pager, nextCursor, testId = "pagination" }: { pager: CursorPager; nextCursor: string | null | undefined; testId?: string }) {
  if (!pager.hasPrevious && !nextCursor) return null;
  return (
    <nav className="pager" aria-label="Pagination" data-testid={testId}>
      <button type="button" className="btn btn-small" disabled={!pager.hasPrevious} onClick={pager.previous} data-testid={`${testId}-prev`}>
        ← Previous
      </button>
      <span className="muted">Page {pager.page}</span>
      <button type="button" className="btn btn-small" disabled={!nextCursor} onClick={() => pager.next(nextCursor)} data-testid={`${testId}-next`}>
        Next →
      </button>
    </nav>
  );
}
