"""Priced nodes for the platform tests (loaded with NODELOOM_NODE_PACKS=tests.platform.nodes)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port


class Priced(Node):
    """Costs 5 credits a run; sleeps `seconds`. Its output is not JSON, so a resumed run repeats it."""

    type = "platform.priced"
    display_name = "Priced"
    description = "Costs 5 credits; passes its input through after `seconds`."
    inputs = (Port("value", "any", required=False),)
    params = (Param("seconds", "number", default=0.0),)
    outputs = (Port("value", "any"),)
    credits = 5
    deterministic = False

    async def run(self, ctx: Context, seconds: float, value: Any = None) -> dict[str, Any]:
        await asyncio.sleep(seconds)
        return {"value": {"echo": value, "opaque": {1, 2}}}  # a set: not JSON, so not resumable


class PricedCached(Node):
    type = "platform.cached"
    display_name = "Priced, cacheable"
    description = "Costs 4 credits; deterministic, so a second identical run is a cache hit."
    inputs = (Port("text", "text", required=False),)
    outputs = (Port("text", "text"),)
    credits = 4
    deterministic = True

    async def run(self, ctx: Context, text: str = "") -> dict[str, Any]:
        return {"text": text.upper()}


class PricedFail(Node):
    type = "platform.fail"
    display_name = "Priced failure"
    description = "Costs 7 credits, but always fails (failed nodes are free)."
    inputs = (Port("value", "any", required=False),)
    outputs = (Port("value", "any"),)
    credits = 7

    async def run(self, ctx: Context, value: Any = None) -> dict[str, Any]:
        raise NodeError("this node always fails", code="test_failure")


class PerImage(Node):
    type = "platform.per_image"
    display_name = "Per image"
    description = "Costs 2 credits per image (`count` images)."
    inputs = (Port("value", "any", required=False),)
    params = (Param("count", "integer", default=1, min=1, max=10),)
    outputs = (Port("value", "any"),)
    credits = 2
    credits_per = "image"
    deterministic = False

    @classmethod
    def price_units(cls, params: Mapping[str, Any]) -> float:
        return float(params.get("count") or 1)

    async def run(self, ctx: Context, count: int, value: Any = None) -> dict[str, Any]:
        return {"value": count}


class Split(Node):
    type = "platform.split"
    display_name = "Split"
    description = "Makes a list of `count` texts (free): feeds a fan-out whose length is known only at run time."
    inputs = (Port("count", "integer"),)
    outputs = (Port("items", "list<text>"),)

    async def run(self, ctx: Context, count: int) -> dict[str, Any]:
        return {"items": [f"item {i}" for i in range(count)]}


class Each(Node):
    type = "platform.each"
    display_name = "Priced per element"
    description = "Costs 3 credits a run; fed a list it runs (and costs) once per element."
    inputs = (Port("text", "text"),)
    outputs = (Port("text", "text"),)
    credits = 3
    deterministic = False

    async def run(self, ctx: Context, text: str) -> dict[str, Any]:
        return {"text": text + "!"}


class Hosted(Node):
    """Stands in for a hosted model node: 10 credits, or 1 when the account's own vendor key served it
    (which a real hosted node records as `byok` in its memory once the vendor answered)."""

    type = "platform.hosted"
    display_name = "Hosted stand-in"
    description = "Records whether the account's own key served the run (param `own_key`)."
    inputs = (Port("value", "any", required=False),)
    params = (Param("own_key", "boolean", default=True),)
    outputs = (Port("value", "any"),)
    credits = 10
    byok_credits = 1
    provider = "fal"
    deterministic = False

    async def run(self, ctx: Context, own_key: bool, value: Any = None) -> dict[str, Any]:
        await ctx.remember("byok", own_key)
        return {"value": value}


def nodes() -> list[type[Node]]:
    return [Priced, PricedCached, PricedFail, PerImage, Split, Each, Hosted]
