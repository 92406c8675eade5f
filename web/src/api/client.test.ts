import { afterEach, describe, expect, it, vi } from "vitest";
import { installFetch } from "../test/http";
import { InsufficientCredits, NotFound, ValidationFailed } from "@nodeloom/client";
import { ApiError, buildUrl, configureClient, describeError, http, nodeloom, setCsrfToken } from "./client";

afterEach(() => {
  setCsrfToken(null);
  configureClient({ onUnauthorized: null, refreshCsrf: null, fetchImpl: null });
});

describe("api client", () => {
  it("builds /api/v1 URLs and skips empty query values", () => {
    expect(buildUrl("/workflows", { q: "fox", cursor: null, limit: 20, empty: "" })).toBe("/api/v1/workflows?q=fox&limit=20");
    expect(buildUrl("/api/v1/nodes")).toBe("/api/v1/nodes");
  });

  it("sends JSON and the CSRF token on writes only", async () => {
    const { calls } = installFetch(() => ({ body: { ok: true } }));
    setCsrfToken("tok");
    await http.get("/workflows");
    await http.post("/workflows", { name: "x" });
    expect(calls[0].headers["X-CSRF-Token"]).toBeUndefined();
    expect(calls[1].headers["X-CSRF-Token"]).toBe("tok");
    expect(calls[1].headers["Content-Type"]).toBe("application/json");
    expect(calls[1].body).toEqual({ name: "x" });
  });

  it("turns the error envelope into an ApiError with details", async () => {
    installFetch(() => ({
      status: 422,
      body: { error: { code: "invalid_graph", message: "The graph is invalid.", details: [{ path: "nodes[0]", message: "unknown type" }] } },
    }));
    const error = (await http.post("/workflows/validate", {}).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 422, code: "invalid_graph", message: "The graph is invalid." });
    expect(error.details).toEqual([{ path: "nodes[0]", message: "unknown type" }]);
    expect(describeError(error)).toBe("The graph is invalid.");
  });

  it("describes answers that are not the envelope, and network failures", async () => {
    installFetch(() => ({ status: 502, text: "<html>bad gateway</html>" }));
    await expect(http.get("/x")).rejects.toMatchObject({ status: 502, code: "http_error" });
    configureClient({ fetchImpl: (() => Promise.reject(new TypeError("offline"))) as unknown as typeof fetch });
    await expect(http.get("/x")).rejects.toMatchObject({ status: 0, code: "network_error" });
  });

  it("returns undefined for 204 and tells the session about a 401 unless asked not to", async () => {
    installFetch(({ url }) => (url.includes("gone") ? { status: 401, body: { error: { code: "unauthorized", message: "Sign in." } } } : { status: 204 }));
    const onUnauthorized = vi.fn();
    configureClient({ onUnauthorized });
    await expect(http.delete("/keys/key_1")).resolves.toBeUndefined();
    await expect(http.get("/gone")).rejects.toMatchObject({ status: 401 });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    await expect(http.get("/gone", { quietUnauthorized: true })).rejects.toMatchObject({ status: 401 });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it("refreshes the CSRF token once and retries a write the server refused for it", async () => {
    let first = true;
    const { calls } = installFetch(({ headers }) => {
      if (first) {
        first = false;
        return { status: 403, body: { error: { code: "csrf_failed", message: "CSRF token missing or wrong." } } };
      }
      return { body: { token: headers["X-CSRF-Token"] } };
    });
    setCsrfToken("old");
    configureClient({ refreshCsrf: async () => "new" });
    await expect(http.post("/keys", {})).resolves.toEqual({ token: "new" });
    expect(calls).toHaveLength(2);
  });

  it("sends FormData as multipart without a JSON content type", async () => {
    const { calls } = installFetch(() => ({ body: { fileId: "file_1", url: "/f" } }));
    const form = new FormData();
    form.append("file", new Blob(["x"]), "x.png");
    await http.post("/uploads", form);
    expect(calls[0].body).toBeInstanceOf(FormData);
    expect(calls[0].headers["Content-Type"]).toBeUndefined();
  });

  it("answers with @nodeloom/client's typed errors, from `http` and from the shared client alike", async () => {
    installFetch(({ url }) =>
      url.includes("missing")
        ? { status: 404, body: { error: { code: "not_found", message: "No such execution." } } }
        : { status: 402, body: { error: { code: "insufficient_credits", message: "Not enough credits.", required: 5, balance: 1, breakdown: [{ nodeId: "gen", nodeType: "x", credits: 5 }] } } },
    );
    const viaHttp = await http.get("/workflows/executions/ex_missing/poll").catch((e: unknown) => e);
    expect(viaHttp).toBeInstanceOf(NotFound);
    expect(viaHttp).toBeInstanceOf(ApiError);
    const viaClient = await nodeloom.poll("ex_missing").catch((e: unknown) => e);
    expect(viaClient).toBeInstanceOf(NotFound);
    expect(viaClient).toMatchObject({ status: 404, code: "not_found", message: "No such execution." });
    const credits = (await nodeloom.execute("wf_1", {}).catch((e: unknown) => e)) as InsufficientCredits;
    expect(credits).toBeInstanceOf(InsufficientCredits);
    expect(credits).toMatchObject({ required: 5, balance: 1 });
    expect(credits.breakdown[0]).toMatchObject({ nodeId: "gen", credits: 5 });
    expect(credits).not.toBeInstanceOf(ValidationFailed);
  });

  it("announces a 401 from the shared client to the session", async () => {
    installFetch(() => ({ status: 401, body: { error: { code: "unauthorized", message: "Sign in." } } }));
    const onUnauthorized = vi.fn();
    configureClient({ onUnauthorized });
    await expect(nodeloom.usage()).rejects.toMatchObject({ status: 401, code: "unauthorized" });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });
});
