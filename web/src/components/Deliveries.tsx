// Webhook delivery attempts for one execution, each with a redeliver button.

import { useState } from "react";
import { describeError } from "../api/client";
import { deliveries as deliveriesApi } from "../api/endpoints";
import type { WebhookDelivery } from "../api/types";
import { useLoader } from "../hooks/useLoader";
import { formatDateTime } from "../lib/format";
import { EmptyState, ErrorMessage, Loading, Notice } from "./Feedback";

function responseCode(delivery: WebhookDelivery): string {
  const code = delivery.statusCode ?? delivery.responseStatus;
  if (typeof code === "number") return String(code);
  return delivery.status !== undefined ? String(delivery.status) : "—";
}

export function Deliveries({ executionId }: { executionId: string }) {
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const list = useLoader(async () => {
    const answer = await deliveriesApi.list(executionId);
    return Array.isArray(answer?.data) ? answer.data : [];
  }, [executionId]);

  async function redeliver(id: string) {
    setError(null);
    setMessage(null);
    try {
      await deliveriesApi.redeliver(id);
      setMessage("Queued for redelivery.");
      list.reload();
    } catch (reason) {
      setError(describeError(reason));
    }
  }

  if (list.loading && !list.data) return <Loading label="Loading deliveries…" />;
  if (list.error) return <ErrorMessage message={list.error} onRetry={list.reload} testId="deliveries-error" />;
  return (
    <div data-testid="deliveries">
      {message && <Notice tone="success" testId="deliveries-message">{message}</Notice>}
      <ErrorMessage message={error} testId="deliveries-action-error" />
      {!list.data || list.data.length === 0 ? (
        <EmptyState title="No webhook deliveries for this execution." testId="deliveries-empty" />
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>Event</th>
                <th>URL</th>
                <th>Response</th>
                <th>Attempt</th>
                <th>When</th>
                <th className="actions-col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.map((delivery) => (
                <tr key={delivery.id} data-testid="delivery-row" data-delivery-id={delivery.id}>
                  <td>{delivery.event ?? delivery.type ?? "—"}</td>
                  <td className="mono small break">{delivery.url ?? "—"}</td>
                  <td>
                    {responseCode(delivery)}
                    {delivery.error && <div className="small text-error">{delivery.error}</div>}
                  </td>
                  <td>{delivery.attempt ?? delivery.attempts ?? "—"}</td>
                  <td className="nowrap">
                    {formatDateTime(delivery.deliveredAt ?? delivery.createdAt)}
                    {delivery.nextAttemptAt && <div className="muted small">next {formatDateTime(delivery.nextAttemptAt)}</div>}
                  </td>
                  <td className="actions-col">
                    <button type="button" className="btn btn-small" onClick={() => redeliver(delivery.id)} data-testid="delivery-redeliver">
                      Redeliver
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
