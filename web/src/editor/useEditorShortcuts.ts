// Keyboard shortcuts of the canvas. Ignored while typing in a field, so Ctrl+Z there undoes text.

import { useEffect } from "react";
import { useGraphStore } from "../stores/graphStore";

function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag === "INPUT") {
    const type = (target as HTMLInputElement).type;
    return !["checkbox", "radio", "button", "submit", "range", "file"].includes(type);
  }
  return false;
}

export function useEditorShortcuts(actions: { save: () => void }): void {
  useEffect(() => {
    function onKeyDown(event: KeyboardEvent) {
      const mod = event.ctrlKey || event.metaKey;
      const key = event.key.toLowerCase();
      // Save works everywhere, including inside fields.
      if (mod && key === "s") {
        event.preventDefault();
        actions.save();
        return;
      }
      if (isTyping(event.target)) return;
      const graph = useGraphStore.getState();
      if (mod && key === "z" && event.shiftKey) {
        event.preventDefault();
        graph.redo();
      } else if (mod && key === "z") {
        event.preventDefault();
        graph.undo();
      } else if (mod && key === "y") {
        event.preventDefault();
        graph.redo();
      } else if (mod && key === "c") {
        if (graph.copySelection() > 0) event.preventDefault();
      } else if (mod && key === "v") {
        if (graph.clipboard) {
          event.preventDefault();
          graph.paste();
        }
      } else if (mod && key === "a") {
        event.preventDefault();
        graph.select(graph.nodes.map((node) => node.id));
      } else if (event.key === "Delete" || event.key === "Backspace") {
        event.preventDefault();
        graph.deleteSelection();
      }
    }
    window.addEventListener("keydown", onKeyDown);
    return () => window.removeEventListener("keydown", onKeyDown);
  }, [actions]);
}
