import { NavLink, Outlet, useLocation, useNavigate } from "react-router-dom";
import { useSessionStore } from "../stores/sessionStore";
import { ErrorBoundary } from "./ErrorBoundary";

const LINKS = [
  { to: "/workflows", label: "Workflows", testId: "nav-workflows" },
  { to: "/executions", label: "Executions", testId: "nav-executions" },
  { to: "/keys", label: "API keys", testId: "nav-keys" },
  { to: "/usage", label: "Usage", testId: "nav-usage" },
];

export function AppShell() {
  const me = useSessionStore((state) => state.me);
  const logout = useSessionStore((state) => state.logout);
  const navigate = useNavigate();
  const location = useLocation();
  const fullBleed = /^\/workflows\/[^/]+$/.test(location.pathname);

  return (
    <div className="shell">
      <header className="topbar">
        <NavLink to="/workflows" className="brand" aria-label="nodeloom home">
          <img src="/favicon.svg" alt="" width={22} height={22} />
          nodeloom
        </NavLink>
        <nav className="topnav" aria-label="Main">
          {LINKS.map((link) => (
            <NavLink key={link.to} to={link.to} data-testid={link.testId} className={({ isActive }) => (isActive ? "active" : undefined)}>
              {link.label}
            </NavLink>
          ))}
        </nav>
        <div className="topbar-account">
          {me && (
            <span className="account" data-testid="account-name" title={me.user.email}>
              {me.account.name} <span className="badge">{me.account.plan}</span>
            </span>
          )}
          <button
            type="button"
            className="btn btn-small"
            data-testid="nav-signout"
            onClick={async () => {
              await logout().catch(() => undefined);
              navigate("/login");
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main className={fullBleed ? "main main-full" : "main"}>
        <ErrorBoundary resetKey={location.pathname}>
          <Outlet />
        </ErrorBoundary>
      </main>
    </div>
  );
}
