// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { configureClient, setCsrfToken } from "../api/client";
import { useSessionStore } from "../stores/sessionStore";
import { installFetch } from "../test/http";
import { LoginPage, safeNext } from "./LoginPage";

const ME = { user: { id: "usr_1", email: "a@b.c" }, account: { id: "acct_1", name: "Acme", plan: "pro" }, csrfToken: "t" };

function renderLogin(path = "/login") {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="/workflows" element={<p>workflows page</p>} />
        <Route path="/usage" element={<p>usage page</p>} />
      </Routes>
    </MemoryRouter>,
  );
}

beforeEach(() => useSessionStore.setState({ status: "signedOut", me: null, signupEnabled: false }));
afterEach(() => {
  cleanup();
  setCsrfToken(null);
  configureClient({ fetchImpl: null });
});

describe("LoginPage", () => {
  it("has labelled Email and Password inputs and signs in", async () => {
    const { calls } = installFetch(() => ({ body: ME }));
    renderLogin("/login?next=%2Fusage");
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "a@b.c" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "secret" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await screen.findByText("usage page");
    expect(calls[0]).toMatchObject({ method: "POST", url: "/api/v1/auth/login", body: { email: "a@b.c", password: "secret" } });
  });

  it("shows the server's message when sign-in fails", async () => {
    installFetch(() => ({ status: 401, body: { error: { code: "invalid_credentials", message: "Wrong email or password." } } }));
    renderLogin();
    fireEvent.change(screen.getByTestId("login-email"), { target: { value: "a@b.c" } });
    fireEvent.change(screen.getByTestId("login-password"), { target: { value: "nope" } });
    fireEvent.submit(screen.getByTestId("login-form"));
    await waitFor(() => expect(screen.getByTestId("login-error")).toHaveTextContent("Wrong email or password."));
  });

  it("offers sign-up only when the server enables it", () => {
    renderLogin();
    expect(screen.queryByTestId("login-signup-link")).toBeNull();
    cleanup();
    useSessionStore.setState({ signupEnabled: true });
    renderLogin();
    expect(screen.getByTestId("login-signup-link")).toBeInTheDocument();
  });

  it("follows only same-site next paths", () => {
    expect(safeNext("/usage")).toBe("/usage");
    expect(safeNext("//evil.example")).toBe("/workflows");
    expect(safeNext("https://evil.example")).toBe("/workflows");
    expect(safeNext(null)).toBe("/workflows");
  });
});
