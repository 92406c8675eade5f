// Undo history as a value: snapshots before each change (`past`) and undone ones (`future`).

export interface History<T> {
  past: T[];
  future: T[];
  limit: number;
}

export function createHistory<T>(limit = 100): History<T> {
  return { past: [], future: [], limit };
}

/** Remembers `before`, the state just before a change; a new change forgets what was undone. */
export function record<T>(history: History<T>, before: T): History<T> {
  const past = [...history.past, before];
  if (past.length > history.limit) past.splice(0, past.length - history.limit);
  return { ...history, past, future: [] };
}

/** Steps back: returns the snapshot to restore, with `current` kept for redo; null when nothing to undo. */
export function undo<T>(history: History<T>, current: T): { history: History<T>; snapshot: T } | null {
  if (history.past.length === 0) return null;
  const snapshot = history.past[history.past.length - 1];
  return {
    history: { ...history, past: history.past.slice(0, -1), future: [current, ...history.future] },
    snapshot,
  };
}

export function redo<T>(history: History<T>, current: T): { history: History<T>; snapshot: T } | null {
  if (history.future.length === 0) return null;
  const [snapshot, ...future] = history.future;
  return { history: { ...history, past: [...history.past, current], future }, snapshot };
}

export function canUndo<T>(history: History<T>): boolean {
  return history.past.length > 0;
}

export function canRedo<T>(history: History<T>): boolean {
  return history.future.length > 0;
}
