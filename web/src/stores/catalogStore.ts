// The node catalogue (GET /nodes), fetched once per session and shared by the palette and forms.

import { create } from "zustand";
import { describeError } from "../api/client";
import { nodes as nodesApi } from "../api/endpoints";
import type { NodeDef } from "../api/types";

export interface CatalogState {
  status: "idle" | "loading" | "ready" | "error";
  defs: NodeDef[];
  error: string | null;
  load: (options?: { force?: boolean }) => Promise<NodeDef[]>;
}

export const useCatalogStore = create<CatalogState>()((set, get) => ({
  status: "idle",
  defs: [],
  error: null,
  load: async ({ force = false } = {}) => {
    if (!force && get().status === "ready") return get().defs;
    set({ status: "loading", error: null });
    try {
      const answer = await nodesApi.list();
      const defs = Array.isArray(answer?.data) ? answer.data : [];
      set({ status: "ready", defs });
      return defs;
    } catch (error) {
      set({ status: "error", error: describeError(error) });
      return [];
    }
  },
}));
