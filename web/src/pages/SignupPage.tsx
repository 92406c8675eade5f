import { useState, type FormEvent } from "react";
import { Link, Navigate } from "react-router-dom";
import { describeError } from "../api/client";
import { ErrorMessage, Notice } from "../components/Feedback";
import { useSessionStore } from "../stores/sessionStore";

export function SignupPage() {
  const status = useSessionStore((state) => state.status);
  const signupEnabled = useSessionStore((state) => state.signupEnabled);
  const signup = useSessionStore((state) => state.signup);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [accountName, setAccountName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  if (status === "signedIn") return <Navigate to="/workflows" replace />;

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signup({ email: email.trim(), password, accountName: accountName.trim() });
    } catch (reason) {
      setError(describeError(reason));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="auth-page">
      <form className="card auth-card" onSubmit={submit} aria-labelledby="signup-title" data-testid="signup-form">
        <div className="auth-brand">
          <img src="/favicon.svg" alt="" width={28} height={28} /> nodeloom
        </div>
        <h1 id="signup-title">Create an account</h1>
        {!signupEnabled && (
          <Notice tone="warning" testId="signup-disabled">
            This server does not offer sign-up; ask its operator for an account.
          </Notice>
        )}
        <div className="field">
          <label htmlFor="signup-account">Account name</label>
          <input id="signup-account" required value={accountName} onChange={(event) => setAccountName(event.target.value)} data-testid="signup-account" />
        </div>
        <div className="field">
          <label htmlFor="signup-email">Email</label>
          <input id="signup-email" type="email" autoComplete="username" required value={email} onChange={(event) => setEmail(event.target.value)} data-testid="signup-email" />
        </div>
        <div className="field">
          <label htmlFor="signup-password">Password</label>
          <input id="signup-password" type="password" autoComplete="new-password" required value={password} onChange={(event) => setPassword(event.target.value)} data-testid="signup-password" />
        </div>
        <ErrorMessage message={error} testId="signup-error" />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy || !signupEnabled} data-testid="signup-submit">
          {busy ? "Creating…" : "Create account"}
        </button>
        <p className="auth-switch">
          Already have an account? <Link to="/login" data-testid="signup-login-link">Sign in</Link>
        </p>
      </form>
    </div>
  );
}
