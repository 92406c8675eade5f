"""Drives the official fal-client against a stand-in, in its own process.

fal-client reads FAL_QUEUE_RUN_HOST once, at import, and always speaks https to it — so the test
starts this script with that variable, FAL_KEY and SSL_CERT_FILE (the stand-in's certificate) set,
exactly as a user would configure the client. Prints one JSON object on stdout.

    python fal_client_driver.py subscribe|cancel|fail ENDPOINT_ID
"""

from __future__ import annotations

import json
import sys
from typing import Any

import fal_client


def describe(status: fal_client.Status) -> list[Any]:
    if isinstance(status, fal_client.Queued):
        return ["queued", status.position]
    if isinstance(status, fal_client.InProgress):
        return ["in_progress", [log["message"] for log in status.logs or []]]
    if isinstance(status, fal_client.Completed):
        return ["completed", [log["message"] for log in status.logs or []], status.error]
    return ["unknown", repr(status)]


def main(mode: str, endpoint: str) -> dict[str, Any]:
    events: list[Any] = []
    if mode == "subscribe":
        result = fal_client.subscribe(
            endpoint,
            arguments={"prompt": "a red fox"},
            with_logs=True,
            on_enqueue=lambda request_id: events.append(["enqueued", request_id]),
            on_queue_update=lambda status: events.append(describe(status)),
        )
        return {"events": events, "result": result}
    if mode == "cancel":
        handle = fal_client.submit(endpoint, arguments={"prompt": "never mind"})
        queued = describe(handle.status())
        handle.cancel()
        return {
            "request_id": handle.request_id,
            "before": queued,
            "after": describe(handle.status(with_logs=True)),
        }
    if mode == "fail":
        try:
            fal_client.subscribe(endpoint, arguments={"prompt": "boom"})
        except fal_client.FalClientHTTPError as exc:
            return {"status": exc.status_code, "message": exc.message}
        return {"status": None}
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
