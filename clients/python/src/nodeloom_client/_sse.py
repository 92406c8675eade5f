"""A Server-Sent Events parser (the WHATWG event-stream format, as much of it as the API uses)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from nodeloom_client._types import Event


async def parse_events(lines: AsyncIterable[str]) -> AsyncIterator[Event]:
    """Events from the stream's lines: ``id:``, ``event:`` and ``data:`` fields (several data lines are
    joined with newlines), a blank line dispatches, ``:`` lines are comments (keep-alives)."""
    event_id: int | None = None
    event_type = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data or event_type:
                yield Event(id=event_id, event=event_type or "message", data=_decode("\n".join(data)))
            event_id, event_type, data = None, "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = int(value) if value.isdigit() else None
        elif name == "event":
            event_type = value
        elif name == "data":
            data.append(value)


def _decode(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}
