"""The list pack: building, indexing, slicing, zipping, flattening, sorting and de-duplicating lists.

List ports (`list<any>`) receive a list whole; linked to a single-value port, a list fans the node out.
"""

from __future__ import annotations

import json
from typing import Any

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port

MAX_LIST = 100_000

ITEMS_IN = Port("items", "list<any>")
ITEMS_OUT = Port("items", "list<any>")
BUILD_SLOTS = tuple(f"item{i}" for i in range(1, 9))


def _checked(items: list[Any]) -> list[Any]:
    if len(items) > MAX_LIST:
        raise NodeError(f"the list would have {len(items):,} items, over the limit of {MAX_LIST:,}",
                        code="list_too_long")
    return items


class ListBuild(Node):
    type = "list.build"
    display_name = "Make list"
    description = "Collects the connected inputs `item1`..`item8`, in order, into a list."
    inputs = tuple(Port(n, "any", required=False) for n in BUILD_SLOTS)
    params = (Param("skipNull", "boolean", default=True, description="Leave out inputs whose value is null"),)
    outputs = (ITEMS_OUT,)

    async def run(self, ctx: Context, *, skipNull: bool, **slots: Any) -> dict[str, Any]:
        present = [slots[n] for n in BUILD_SLOTS if n in slots]
        return {"items": [v for v in present if not (skipNull and v is None)]}


class ListIndex(Node):
    type = "list.index"
    display_name = "List item"
    description = ("Picks the item at `index` (0 is the first, -1 the last); out of range gives `default` or "
                   "fails.")
    inputs = (ITEMS_IN, Port("index", "integer", required=False, default=0), Port("default", "any",
              required=False))
    outputs = (Port("item", "any"),)

    async def run(self, ctx: Context, *, items: list[Any], index: int, default: Any = None) -> dict[str, Any]:
        if -len(items) <= index < len(items):
            return {"item": items[index]}
        if default is not None:
            return {"item": default}
        raise NodeError(f"index {index} is out of range for a list of {len(items)}",
                        code="index_out_of_range")


class ListZip(Node):
    type = "list.zip"
    display_name = "Zip lists"
    description = ("Pairs up lists item by item: [a0, b0], [a1, b1], …; `strict` refuses lists of different "
                   "lengths.")
    inputs = (Port("a", "list<any>"), Port("b", "list<any>"), Port("c", "list<any>", required=False))
    params = (Param("strict", "boolean", default=True),)
    outputs = (ITEMS_OUT,)

    async def run(self, ctx: Context, *, a: list[Any], b: list[Any], strict: bool,
                  c: list[Any] | None = None) -> dict[str, Any]:
        lists = [a, b] if c is None else [a, b, c]
        if strict and len({len(x) for x in lists}) > 1:
            raise NodeError("the lists have different lengths: " + ", ".join(str(len(x)) for x in lists),
                            code="list_length_mismatch")
        return {"items": [list(t) for t in zip(*lists, strict=False)]}


def flatten(items: list[Any], depth: int) -> list[Any]:
    """Flatten nested lists `depth` levels deep, without recursion."""
    out: list[Any] = []
    stack: list[tuple[list[Any], int, int]] = [(items, 0, depth)]
    while stack:
        current, i, levels = stack.pop()
        while i < len(current):
            item = current[i]
            i += 1
            if isinstance(item, list) and levels > 0:
                stack.append((current, i, levels))
                current, i, levels = item, 0, levels - 1
                continue
            out.append(item)
    return _checked(out)


class ListFlatten(Node):
    type = "list.flatten"
    display_name = "Flatten list"
    description = "Turns a list of lists into one list, unpacking `depth` levels of nesting."
    inputs = (ITEMS_IN,)
    params = (Param("depth", "integer", default=1, min=1, max=64),)
    outputs = (ITEMS_OUT,)

    async def run(self, ctx: Context, *, items: list[Any], depth: int) -> dict[str, Any]:
        return {"items": flatten(items, depth)}


class ListCount(Node):
    type = "list.count"
    display_name = "List length"
    description = "Counts the items in a list."
    inputs = (ITEMS_IN,)
    outputs = (Port("count", "integer"),)

    async def run(self, ctx: Context, *, items: list[Any]) -> dict[str, Any]:
        return {"count": len(items)}


class ListSlice(Node):
    type = "list.slice"
    display_name = "Slice list"
    description = ("Takes items from `start` up to (not including) `end`, every `step`-th; negatives count "
                   "from the end.")
    inputs = (ITEMS_IN,)
    params = (
        Param("start", "integer",
              description="Empty: from the first item (the last when `step` is negative)"),
        Param("end", "integer", description="Empty: to the end"),
        Param("step", "integer", default=1, min=-1000, max=1000),
    )
    outputs = (ITEMS_OUT,)

    async def run(self, ctx: Context, *, items: list[Any], start: int | None, end: int | None,
                  step: int) -> dict[str, Any]:
        if step == 0:
            raise NodeError("step cannot be 0", code="invalid_param")
        return {"items": items[start:end:step]}


class ListRange(Node):
    type = "list.range"
    display_name = "Number range"
    description = ("Makes the list of whole numbers from `start` up to (not including) `stop`, in steps of "
                   "`step`.")
    params = (
        Param("start", "integer", default=0),
        Param("stop", "integer", default=10),
        Param("step", "integer", default=1, min=-1_000_000, max=1_000_000),
    )
    outputs = (Port("values", "list<integer>"),)

    async def run(self, ctx: Context, *, start: int, stop: int, step: int) -> dict[str, Any]:
        if step == 0:
            raise NodeError("step cannot be 0", code="invalid_param")
        values = range(start, stop, step)
        if len(values) > MAX_LIST:
            raise NodeError(f"the range has {len(values):,} numbers, over the limit of {MAX_LIST:,}",
                            code="list_too_long")
        return {"values": list(values)}


class ListReverse(Node):
    type = "list.reverse"
    display_name = "Reverse list"
    description = "Puts the list's items in the opposite order."
    inputs = (ITEMS_IN,)
    outputs = (ITEMS_OUT,)

    async def run(self, ctx: Context, *, items: list[Any]) -> dict[str, Any]:
        return {"items": items[::-1]}


class ListSort(Node):
    type = "list.sort"
    display_name = "Sort list"
    description = ("Sorts numbers or texts, or objects by the field named `key`, ascending unless "
                   "`descending`.")
    inputs = (ITEMS_IN,)
    params = (
        Param("descending", "boolean", default=False),
        Param("key", "text", default="", max_length=200, description="Field to sort objects by"),
    )
    outputs = (ITEMS_OUT,)

    async def run(self, ctx: Context, *, items: list[Any], descending: bool, key: str) -> dict[str, Any]:
        def sort_key(item: Any) -> Any:
            value = item.get(key) if key and isinstance(item, dict) else item
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise NodeError(f"cannot sort by {json.dumps(value)[:60]}: only numbers and texts sort",
                                code="invalid_input")
            return value

        try:
            return {"items": sorted(items, key=sort_key, reverse=descending)}
        except TypeError as exc:
            raise NodeError("cannot sort a mix of numbers and texts", code="invalid_input") from exc


def _identity(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


class ListUnique(Node):
    type = "list.unique"
    display_name = "Unique items"
    description = "Drops repeated items, keeping the first of each in order."
    inputs = (ITEMS_IN,)
    outputs = (ITEMS_OUT,)

    async def run(self, ctx: Context, *, items: list[Any]) -> dict[str, Any]:
        seen: set[str] = set()
        unique = []
        for item in items:
            key = _identity(item)
            if key not in seen:
                seen.add(key)
                unique.append(item)
        return {"items": unique}


class ListConcat(Node):
    type = "list.concat"
    display_name = "Concatenate lists"
    description = "Appends lists one after another into a single list."
    inputs = (Port("a", "list<any>"), Port("b", "list<any>"), Port("c", "list<any>", required=False),
              Port("d", "list<any>", required=False))
    outputs = (ITEMS_OUT,)

    async def run(self, ctx: Context, **lists: list[Any] | None) -> dict[str, Any]:
        joined = [item for name in ("a", "b", "c", "d") for item in (lists.get(name) or [])]
        return {"items": _checked(joined)}


def nodes() -> list[type[Node]]:
    return [ListBuild, ListIndex, ListZip, ListFlatten, ListCount, ListSlice, ListRange, ListReverse, ListSort,
            ListUnique, ListConcat]
