// The editor's UI state around the graph: the server's copy of the workflow, save/validate/publish
// progress, the message bar and which side panel is open.

import { create } from "zustand";
import type { Workflow } from "../api/types";

export type SidePanel = "inspect" | "run" | "versions";
export type SaveState = "idle" | "saving" | "saved" | "error";
export type ValidationState = "idle" | "checking" | "valid" | "invalid" | "error";

export interface EditorMessage {
  tone: "error" | "success" | "info";
  text: string;
}

export interface EditorState {
  workflow: Workflow | null;
  saveState: SaveState;
  validation: ValidationState;
  publishing: boolean;
  message: EditorMessage | null;
  panel: SidePanel;

  setWorkflow: (workflow: Workflow | null) => void;
  setSaveState: (saveState: SaveState) => void;
  setValidation: (validation: ValidationState) => void;
  setPublishing: (publishing: boolean) => void;
  setMessage: (message: EditorMessage | null) => void;
  setPanel: (panel: SidePanel) => void;
  reset: () => void;
}

const initial = {
  workflow: null,
  saveState: "idle" as SaveState,
  validation: "idle" as ValidationState,
  publishing: false,
  message: null,
  panel: "inspect" as SidePanel,
};

export const useEditorStore = create<EditorState>()((set) => ({
  ...initial,
  setWorkflow: (workflow) => set({ workflow }),
  setSaveState: (saveState) => set({ saveState }),
  setValidation: (validation) => set({ validation }),
  setPublishing: (publishing) => set({ publishing }),
  setMessage: (message) => set({ message }),
  setPanel: (panel) => set({ panel }),
  reset: () => set({ ...initial }),
}));
