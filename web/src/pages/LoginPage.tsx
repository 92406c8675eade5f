import { useState, type FormEvent } from "react";
import { Link, Navigate, useSearchParams } from "react-router-dom";
import { describeError } from "../api/client";
import { ErrorMessage } from "../components/Feedback";
import { useSessionStore } from "../stores/sessionStore";

/** Only same-site paths are followed after sign-in. */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/workflows";
}

export function LoginPage() {
  const status = useSessionStore((state) => state.status);
  const signupEnabled = useSessionStore((state) => state.signupEnabled);
  const login = useSessionStore((state) => state.login);
  const [params] = useSearchParams();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  if (status === "signedIn") return <Navigate to={safeNext(params.get("next"))} replace />;

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(email.trim(), password);
    } catch (reason) {
      setError(describeError(reason));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="auth-page">
      <form className="card auth-card" onSubmit={submit} aria-labelledby="login-title" data-testid="login-form">
        <div className="auth-brand">
          <img src="/favicon.svg" alt="" width={28} height={28} /> nodeloom
        </div>
        <h1 id="login-title">Sign in</h1>
        <div className="field">
          <label htmlFor="login-email">Email</label>
          <input id="login-email" type="email" autoComplete="username" required value={email} onChange={(event) => setEmail(event.target.value)} data-testid="login-email" />
        </div>
        <div className="field">
          <label htmlFor="login-password">Password</label>
          <input id="login-password" type="password" autoComplete="current-password" required value={password} onChange={(event) => setPassword(event.target.value)} data-testid="login-password" />
        </div>
        <ErrorMessage message={error} testId="login-error" />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy} data-testid="login-submit">
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {signupEnabled && (
          <p className="auth-switch">
            No account yet? <Link to="/signup" data-testid="login-signup-link">Create one</Link>
          </p>
        )}
      </form>
    </div>
  );
}
