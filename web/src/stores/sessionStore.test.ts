import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { configureClient, getCsrfToken, setCsrfToken } from "../api/client";
import { installFetch } from "../test/http";
import { useSessionStore } from "./sessionStore";

const ME = { user: { id: "usr_1", email: "a@b.c" }, account: { id: "acct_1", name: "Acme", plan: "pro" }, csrfToken: "csrf_1" };
const store = () => useSessionStore.getState();

beforeEach(() => useSessionStore.setState({ status: "unknown", me: null, signupEnabled: false }));
afterEach(() => {
  setCsrfToken(null);
  configureClient({ fetchImpl: null });
});

describe("session store", () => {
  it("bootstraps a signed-in session and keeps its CSRF token", async () => {
    installFetch(({ url }) => (url.endsWith("/auth/me") ? { body: ME } : { body: { signupEnabled: true } }));
    await store().bootstrap();
    expect(store()).toMatchObject({ status: "signedIn", signupEnabled: true });
    expect(store().me?.account.name).toBe("Acme");
    expect(getCsrfToken()).toBe("csrf_1");
  });

  it("reads signupEnabled from a 401 body when there is no config endpoint", async () => {
    installFetch(({ url }) =>
      url.endsWith("/auth/me")
        ? { status: 401, body: { error: { code: "unauthorized", message: "Sign in." }, signupEnabled: true } }
        : { status: 404, body: { error: { code: "not_found", message: "No." } } },
    );
    await store().bootstrap();
    expect(store().status).toBe("signedOut");
    expect(store().signupEnabled).toBe(true);
  });

  it("also reads signupEnabled inside the error envelope, and the config endpoint wins", async () => {
    installFetch(({ url }) =>
      url.endsWith("/auth/me")
        ? { status: 401, body: { error: { code: "unauthorized", message: "Sign in.", signupEnabled: true } } }
        : { body: { signupEnabled: false } },
    );
    await store().bootstrap();
    expect(store().signupEnabled).toBe(false);
  });

  it("signs in, fetching /auth/me when the answer has only the token", async () => {
    const { calls } = installFetch(({ url }) => (url.endsWith("/auth/login") ? { body: { csrfToken: "csrf_2" } } : { body: { ...ME, csrfToken: "csrf_2" } }));
    await store().login("a@b.c", "pw");
    expect(calls[0].body).toEqual({ email: "a@b.c", password: "pw" });
    expect(store().status).toBe("signedIn");
    expect(getCsrfToken()).toBe("csrf_2");
  });

  it("surfaces a failed sign-in and stays signed out", async () => {
    installFetch(() => ({ status: 401, body: { error: { code: "invalid_credentials", message: "Wrong email or password." } } }));
    useSessionStore.setState({ status: "signedOut" });
    await expect(store().login("a@b.c", "bad")).rejects.toThrow("Wrong email or password.");
    expect(store().status).toBe("signedOut");
  });

  it("signs up with an account name", async () => {
    const { calls } = installFetch(() => ({ body: ME }));
    await store().signup({ email: "a@b.c", password: "pw", accountName: "Acme" });
    expect(calls[0].url).toBe("/api/v1/auth/signup");
    expect(calls[0].body).toEqual({ email: "a@b.c", password: "pw", accountName: "Acme" });
    expect(store().status).toBe("signedIn");
  });

  it("signs out and forgets the token, and expires on a 401", async () => {
    const { calls } = installFetch(() => ({ status: 204 }));
    useSessionStore.setState({ status: "signedIn", me: ME });
    setCsrfToken("csrf_1");
    await store().logout();
    expect(calls[0]).toMatchObject({ method: "POST", url: "/api/v1/auth/logout" });
    expect(calls[0].headers["X-CSRF-Token"]).toBe("csrf_1");
    expect(store().status).toBe("signedOut");
    expect(getCsrfToken()).toBeNull();
    useSessionStore.setState({ status: "signedIn", me: ME });
    store().expired();
    expect(store().status).toBe("signedOut");
  });
});
