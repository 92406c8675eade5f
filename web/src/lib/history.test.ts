import { describe, expect, it } from "vitest";
import { canRedo, canUndo, createHistory, record, redo, undo } from "./history";

describe("undo history", () => {
  it("undoes and redoes in order", () => {
    let history = createHistory<number>();
    history = record(history, 1); // state was 1, became 2
    history = record(history, 2); // state was 2, became 3
    const back = undo(history, 3)!;
    expect(back.snapshot).toBe(2);
    const back2 = undo(back.history, 2)!;
    expect(back2.snapshot).toBe(1);
    expect(canUndo(back2.history)).toBe(false);
    const forward = redo(back2.history, 1)!;
    expect(forward.snapshot).toBe(2);
    expect(canRedo(forward.history)).toBe(true);
  });

  it("forgets the redo stack on a new change and caps its length", () => {
    let history = createHistory<number>(3);
    for (let i = 0; i < 5; i += 1) history = record(history, i);
    expect(history.past).toEqual([2, 3, 4]);
    const back = undo(history, 5)!;
    expect(canRedo(back.history)).toBe(true);
    expect(canRedo(record(back.history, 4))).toBe(false);
  });

  it("answers null when there is nothing to undo or redo", () => {
    expect(undo(createHistory<number>(), 0)).toBeNull();
    expect(redo(createHistory<number>(), 0)).toBeNull();
  });
});
