// Cursor pagination with a way back: the cursors of the pages already seen form a stack.

import { useCallback, useState } from "react";

export interface CursorPager {
  cursor: string | null;
  page: number;
  hasPrevious: boolean;
  next: (nextCursor: string | null | undefined) => void;
  previous: () => void;
  restart: () => void;
}

export function useCursorPager(): CursorPager {
  const [stack, setStack] = useState<(string | null)[]>([null]);
  const next = useCallback((nextCursor: string | null | undefined) => {
    if (nextCursor) setStack((current) => [...current, nextCursor]);
  }, []);
  const previous = useCallback(() => setStack((current) => (current.length > 1 ? current.slice(0, -1) : current)), []);
  const restart = useCallback(() => setStack([null]), []);
  return {
    cursor: stack[stack.length - 1],
    page: stack.length,
    hasPrevious: stack.length > 1,
    next,
    previous,
    restart,
  };
}
