"""The nodeloom Python SDK: an async core (`AsyncClient`) and a thin sync wrapper (`Client`).

    from nodeloom.client import Client
    with Client(base_url="http://127.0.0.1:8000", api_key="sk-...") as nl:
        run = nl.execute("wf_...", inputs={"prompt": "a red fox"})
        result = nl.wait(run.execution_id)
        print(result.status, result.outputs)

Only httpx is imported. Every POST carries an Idempotency-Key (retried POSTs never run twice), 429/503
answers are retried after their Retry-After, and `wait` polls with backoff.
"""

from nodeloom.client.core import AsyncClient, Client, Execution, NodeloomAPIError, Submitted

__all__ = ["AsyncClient", "Client", "Execution", "NodeloomAPIError", "Submitted"]
