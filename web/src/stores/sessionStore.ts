// Who is signed in, and the CSRF token their cookie-authenticated writes carry.

import { create } from "zustand";
import { ApiError, setCsrfToken } from "../api/client";
import { auth } from "../api/endpoints";
import type { Me } from "../api/types";

export type SessionStatus = "unknown" | "signedIn" | "signedOut";

export interface SessionState {
  status: SessionStatus;
  me: Me | null;
  signupEnabled: boolean;

  /** Asks the server who we are (GET /auth/me) and whether sign-up is open. */
  bootstrap: () => Promise<void>;
  login: (email: string, password: string) => Promise<void>;
  signup: (args: { email: string; password: string; accountName: string }) => Promise<void>;
  logout: () => Promise<void>;
  /** The session ended on the server (a 401 somewhere): forget it locally. */
  expired: () => void;
  refreshCsrf: () => Promise<string | null>;
}

function signupFlag(value: unknown): boolean | null {
  if (value && typeof value === "object" && typeof (value as { signupEnabled?: unknown }).signupEnabled === "boolean") {
    return (value as { signupEnabled: boolean }).signupEnabled;
  }
  return null;
}

export const useSessionStore = create<SessionState>()((set, get) => {
  async function adopt(answer: Partial<Me> | undefined): Promise<void> {
    // Login/sign-up answers carry csrfToken and usually the user; /auth/me fills in what is missing.
    if (answer?.csrfToken) setCsrfToken(answer.csrfToken);
    let me = answer?.user && answer.account && answer.csrfToken ? (answer as Me) : null;
    if (!me) me = await auth.me();
    setCsrfToken(me.csrfToken ?? answer?.csrfToken ?? null);
    set({ status: "signedIn", me });
  }

  return {
    status: "unknown",
    me: null,
    signupEnabled: false,

    bootstrap: async () => {
      const config = auth.config().then(
        (answer) => signupFlag(answer),
        () => null,
      );
      try {
        const me = await auth.me();
        setCsrfToken(me.csrfToken ?? null);
        set({ status: "signedIn", me });
      } catch (error) {
        setCsrfToken(null);
        const fromBody = error instanceof ApiError ? (signupFlag(error.error) ?? signupFlag(error.body)) : null;
        set({ status: "signedOut", me: null, ...(fromBody !== null ? { signupEnabled: fromBody } : {}) });
      }
      const enabled = await config;
      if (enabled !== null) set({ signupEnabled: enabled });
    },

    login: async (email, password) => {
      await adopt(await auth.login(email, password));
    },

    signup: async (args) => {
      await adopt(await auth.signup(args));
    },

    logout: async () => {
      try {
        await auth.logout();
      } finally {
        setCsrfToken(null);
        set({ status: "signedOut", me: null });
      }
    },

    expired: () => {
      if (get().status !== "signedIn") return;
      setCsrfToken(null);
      set({ status: "signedOut", me: null });
    },

    refreshCsrf: async () => {
      try {
        const me = await auth.me();
        set({ me });
        return me.csrfToken ?? null;
      } catch {
        return null;
      }
    },
  };
});
