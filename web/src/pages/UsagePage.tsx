import { usage as usageApi } from "../api/endpoints";
import { BarChart } from "../components/BarChart";
import { ErrorMessage, Loading } from "../components/Feedback";
import { useLoader } from "../hooks/useLoader";
import { formatCredits } from "../lib/format";

export function UsagePage() {
  const usage = useLoader(() => usageApi.get(), []);

  if (usage.loading && !usage.data) return <Loading label="Loading usage…" />;
  if (!usage.data) {
    return (
      <div className="page">
        <ErrorMessage message={usage.error ?? "No usage data."} onRetry={usage.reload} testId="usage-error" />
      </div>
    );
  }
  const data = usage.data;
  const daily = [...(data.daily ?? [])].sort((a, b) => a.date.localeCompare(b.date));
  const limit = data.executions?.dailyLimit;
  const today = data.executions?.today ?? 0;
  const share = typeof limit === "number" && limit > 0 ? Math.min(100, (today / limit) * 100) : null;

  return (
    <div className="page" data-testid="usage-page">
      <div className="page-header">
        <h1>Usage</h1>
        <button type="button" className="btn" onClick={usage.reload} data-testid="usage-refresh">
          Refresh
        </button>
      </div>
      <div className="stat-grid">
        <div className="stat card">
          <span className="stat-label">Plan</span>
          <span className="stat-value" data-testid="usage-plan">{data.plan}</span>
        </div>
        <div className="stat card">
          <span className="stat-label">Credit balance</span>
          <span className="stat-value" data-testid="usage-balance">{formatCredits(data.credits?.balance)}</span>
        </div>
        <div className="stat card">
          <span className="stat-label">Executions today</span>
          <span className="stat-value" data-testid="usage-today">
            {today}
            <span className="stat-sub"> / {typeof limit === "number" ? limit : "unlimited"}</span>
          </span>
          {share !== null && (
            <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(share)} aria-label="Daily quota used">
              <span style={{ width: `${share}%` }} className={share > 90 ? "danger" : undefined} />
            </div>
          )}
        </div>
        <div className="stat card">
          <span className="stat-label">Executions this month</span>
          <span className="stat-value" data-testid="usage-month">{data.executions?.thisMonth ?? 0}</span>
        </div>
        <div className="stat card">
          <span className="stat-label">Rate limits</span>
          <span className="stat-value stat-small" data-testid="usage-rate-limits">
            {data.rateLimits?.requestsPerMinute ?? "—"} req/min · {data.rateLimits?.executionsPerMinute ?? "—"} runs/min
          </span>
        </div>
      </div>
      <section className="card">
        <BarChart title="Executions per day" bars={daily.map((day) => ({ label: day.date, value: day.executions }))} testId="chart-executions" />
      </section>
      <section className="card">
        <BarChart title="Credits per day" bars={daily.map((day) => ({ label: day.date, value: day.credits }))} testId="chart-credits" unit=" cr" />
      </section>
    </div>
  );
}
