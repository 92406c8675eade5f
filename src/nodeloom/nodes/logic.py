"""The logic pack: arithmetic and comparisons, seeded random numbers, branching (if, switch, router,
coalesce), boolean algebra, and list handling.

Every branch input is computed before the node runs: `logic.if` chooses between values, it does not
skip the work that produced the other one.
"""

from __future__ import annotations

import json
import math
import operator
import random
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Decimal,
    InvalidOperation,
)
from decimal import Context as DecimalContext
from typing import Any, ClassVar

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port

OPERATIONS = ("add", "subtract", "multiply", "divide", "power", "modulo", "min", "max")
MAX_LIST = 100_000
#: integers beyond this lose precision in JavaScript clients, so results that large stay floats
SAFE_INTEGER = 2**53


def _number(value: float) -> float:
    """Refuse results JSON cannot carry (inf, nan)."""
    if isinstance(value, complex) or not math.isfinite(value):
        raise NodeError("the result is not a finite number", code="math_error")
    return value


def arithmetic(op: str, a: float, b: float) -> float:
    try:
        if op == "add":
            result = a + b
        elif op == "subtract":
            result = a - b
        elif op == "multiply":
            result = a * b
        elif op == "divide":
            result = a / b
        elif op == "modulo":
            result = a % b
        elif op == "power":
            result = float(a) ** float(b)
            if isinstance(a, int) and isinstance(b, int) and b >= 0 and not isinstance(result, complex) \
                    and abs(result) < SAFE_INTEGER:
                result = a**b
        elif op == "min":
            result = min(a, b)
        else:
            result = max(a, b)
    except ZeroDivisionError as exc:
        raise NodeError(f"cannot {op} by zero", code="math_error") from exc
    except OverflowError as exc:
        raise NodeError("the result is too large", code="math_error") from exc
    return _number(result)


# --- math ----------------------------------------------------------------------------------------------


class MathArithmetic(Node):
    type = "math.arithmetic"
    display_name = "Arithmetic"
    description = "Computes `a` op `b`: add, subtract, multiply, divide, power, modulo, min or max."
    inputs = (Port("a", "number"), Port("b", "number"))
    params = (Param("op", "text", default="add", enum=OPERATIONS),)
    outputs = (Port("result", "number"),)

    async def run(self, ctx: Context, *, a: float, b: float, op: str) -> dict[str, Any]:
        return {"result": arithmetic(op, a, b)}


class _Shortcut(Node):
    """One arithmetic operation without the `op` setting, for a tidier canvas."""

    op: ClassVar[str] = ""
    inputs = (Port("a", "number"), Port("b", "number"))
    outputs = (Port("result", "number"),)

    async def run(self, ctx: Context, *, a: float, b: float) -> dict[str, Any]:
        return {"result": arithmetic(self.op, a, b)}


class MathAdd(_Shortcut):
    type = "math.add"
    display_name = "Add"
    description = "Adds `b` to `a`."
    op = "add"


class MathSubtract(_Shortcut):
    type = "math.subtract"
    display_name = "Subtract"
    description = "Subtracts `b` from `a`."
    op = "subtract"


class MathMultiply(_Shortcut):
    type = "math.multiply"
    display_name = "Multiply"
    description = "Multiplies `a` by `b`."
    op = "multiply"


class MathDivide(_Shortcut):
    type = "math.divide"
    display_name = "Divide"
    description = "Divides `a` by `b`; dividing by zero fails the node."
    op = "divide"


class MathPower(_Shortcut):
    type = "math.power"
    display_name = "Power"
    description = "Raises `a` to the power `b`."
    op = "power"


class MathModulo(_Shortcut):
    type = "math.modulo"
    display_name = "Modulo"
    description = "The remainder of `a` divided by `b`, with the sign of `b`."
    op = "modulo"


COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
               ">=": operator.ge}


class MathCompare(Node):
    type = "math.compare"
    display_name = "Compare numbers"
    description = "Compares `a` with `b` (==, !=, <, <=, >, >=); equality allows a `tolerance`."
    inputs = (Port("a", "number"), Port("b", "number"))
    params = (
        Param("op", "text", default="==", enum=tuple(COMPARISONS)),
        Param("tolerance", "number", default=0, min=0, description="Differences up to this count as equal"),
    )
    outputs = (Port("result", "boolean"),)

    async def run(self, ctx: Context, *, a: float, b: float, op: str, tolerance: float) -> dict[str, Any]:
        if op in ("==", "!=") and tolerance > 0:
            equal = abs(a - b) <= tolerance
            return {"result": equal if op == "==" else not equal}
        return {"result": bool(COMPARISONS[op](a, b))}


class MathClamp(Node):
    type = "math.clamp"
    display_name = "Clamp"
    description = "Limits `value` to the range from `min` to `max`."
    inputs = (Port("value", "number"),)
    params = (Param("min", "number", default=0), Param("max", "number", default=1))
    outputs = (Port("value", "number"),)

    async def run(self, ctx: Context, *, value: float, **bounds: float) -> dict[str, Any]:
        low, high = bounds["min"], bounds["max"]
        if low > high:
            raise NodeError(f"min ({low:g}) is greater than max ({high:g})", code="invalid_param")
        return {"value": low if value < low else high if value > high else value}


ROUNDING = {"nearest": ROUND_HALF_UP, "half-even": ROUND_HALF_EVEN, "floor": ROUND_FLOOR,
            "ceil": ROUND_CEILING, "truncate": ROUND_DOWN}


def round_number(value: float, decimals: int, mode: str) -> float:
    try:
        # enough precision for every float's integer digits plus the requested decimals
        rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUNDING[mode],
                                                context=DecimalContext(prec=400))
    except InvalidOperation as exc:
        raise NodeError("the number is too large to round to that many decimals", code="math_error") from exc
    return int(rounded) if decimals == 0 else float(rounded)


class MathRound(Node):
    type = "math.round"
    display_name = "Round"
    description = ("Rounds to `decimals` places (nearest with halves away from zero, half-even, floor, ceil "
                   "or truncate); `integer` is the whole-number rounding, for integer ports.")
    inputs = (Port("value", "number"),)
    params = (
        Param("decimals", "integer", default=0, min=0, max=15),
        Param("mode", "text", default="nearest", enum=tuple(ROUNDING)),
    )
    outputs = (Port("value", "number"), Port("integer", "integer"))

    async def run(self, ctx: Context, *, value: float, decimals: int, mode: str) -> dict[str, Any]:
        return {"value": round_number(value, decimals, mode), "integer": round_number(value, 0, mode)}


class MathRandom(Node):
    type = "math.random"
    display_name = "Random number"
    description = ("Draws a number between `min` and `max` from `seed`: the same seed always gives the same "
                   "number.")
    inputs = (Port("seed", "integer", required=False, default=0),)
    params = (
        Param("min", "number", default=0),
        Param("max", "number", default=1),
        Param("kind", "text", default="float", enum=("float", "integer"),
              description="Integers include both ends"),
    )
    outputs = (Port("value", "number"),)

    async def run(self, ctx: Context, *, seed: int, kind: str, **bounds: float) -> dict[str, Any]:
        low, high = bounds["min"], bounds["max"]
        if low > high:
            raise NodeError(f"min ({low:g}) is greater than max ({high:g})", code="invalid_param")
        rng = random.Random(seed)
        if kind == "integer":
            first, last = math.ceil(low), math.floor(high)
            if first > last:
                raise NodeError(f"no whole number lies between {low:g} and {high:g}", code="invalid_param")
            return {"value": rng.randint(first, last)}
        return {"value": rng.uniform(low, high)}


class MathRemap(Node):
    type = "math.remap"
    display_name = "Remap range"
    description = "Maps `value` linearly from the range `inMin`..`inMax` onto `outMin`..`outMax`."
    inputs = (Port("value", "number"),)
    params = (
        Param("inMin", "number", default=0),
        Param("inMax", "number", default=1),
        Param("outMin", "number", default=0),
        Param("outMax", "number", default=100),
        Param("clamp", "boolean", default=True, description="Keep the result inside the output range"),
    )
    outputs = (Port("value", "number"),)

    async def run(self, ctx: Context, *, value: float, inMin: float, inMax: float, outMin: float,
                  outMax: float, clamp: bool) -> dict[str, Any]:
        if inMin == inMax:
            raise NodeError("inMin and inMax must differ", code="invalid_param")
        t = (value - inMin) / (inMax - inMin)
        if clamp:
            t = min(1.0, max(0.0, t))
        return {"value": _number(outMin + t * (outMax - outMin))}


# --- logic ---------------------------------------------------------------------------------------------


class LogicIf(Node):
    type = "logic.if"
    display_name = "If"
    description = "Passes on `then` when `condition` is true, else `else`."
    inputs = (Port("condition", "boolean"), Port("then", "any", required=False), Port("else", "any",
              required=False))
    outputs = (Port("value", "any"),)

    async def run(self, ctx: Context, *, condition: bool, **branches: Any) -> dict[str, Any]:
        return {"value": branches.get("then") if condition else branches.get("else")}


CASES = ("case0", "case1", "case2", "case3")


class LogicSwitch(Node):
    type = "logic.switch"
    display_name = "Switch"
    description = "Passes on the input `case<index>`; an index with nothing connected gives `default`."
    inputs = (Port("index", "integer"), *(Port(c, "any", required=False) for c in CASES),
              Port("default", "any", required=False))
    outputs = (Port("value", "any"),)

    async def run(self, ctx: Context, *, index: int, **cases: Any) -> dict[str, Any]:
        chosen = cases.get(f"case{index}") if 0 <= index < len(CASES) else None
        if chosen is None:
            chosen = cases.get("default")
        if chosen is None:
            raise NodeError(f"case {index} has no value and no default is connected", code="no_value")
        return {"value": chosen}


ROUTES = ("out0", "out1", "out2", "out3")


class LogicRouter(Node):
    type = "logic.router"
    display_name = "Router"
    description = "Sends `value` to the output `out<route>`; the other outputs are null."
    inputs = (Port("value", "any"), Port("route", "integer", required=False, default=0))
    outputs = tuple(Port(r, "any") for r in ROUTES)

    async def run(self, ctx: Context, *, value: Any, route: int) -> dict[str, Any]:
        if not 0 <= route < len(ROUTES):
            raise NodeError(f"route must be 0 to {len(ROUTES) - 1}, got {route}", code="invalid_input")
        return {name: value if i == route else None for i, name in enumerate(ROUTES)}


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and not value)


class LogicCoalesce(Node):
    type = "logic.coalesce"
    display_name = "First value"
    description = ("Passes on the first of `a`..`d` that has a value (with `skipEmpty`, also passing over "
                   "\"\" and []).")
    inputs = tuple(Port(n, "any", required=False) for n in ("a", "b", "c", "d"))
    params = (Param("skipEmpty", "boolean", default=False),)
    outputs = (Port("value", "any"),)

    async def run(self, ctx: Context, *, skipEmpty: bool, **values: Any) -> dict[str, Any]:
        for name in ("a", "b", "c", "d"):
            value = values.get(name)
            if not (_is_empty(value) if skipEmpty else value is None):
                return {"value": value}
        raise NodeError("none of the inputs has a value", code="no_value")


class _BooleanGate(Node):
    combine: ClassVar[Any] = all
    inputs = (Port("a", "boolean"), Port("b", "boolean"), Port("c", "boolean", required=False),
              Port("d", "boolean", required=False))
    outputs = (Port("result", "boolean"),)

    async def run(self, ctx: Context, **values: bool | None) -> dict[str, Any]:
        return {"result": type(self).combine(bool(v) for v in values.values() if v is not None)}


class LogicAnd(_BooleanGate):
    type = "logic.and"
    display_name = "And"
    description = "True when every connected input is true."
    combine = all


class LogicOr(_BooleanGate):
    type = "logic.or"
    display_name = "Or"
    description = "True when at least one connected input is true."
    combine = any


class LogicNot(Node):
    type = "logic.not"
    display_name = "Not"
    description = "Turns true into false and false into true."
    inputs = (Port("value", "boolean"),)
    outputs = (Port("result", "boolean"),)

    async def run(self, ctx: Context, *, value: bool) -> dict[str, Any]:
        return {"result": not value}


class LogicEquals(Node):
    type = "logic.equals"
    display_name = "Equals"
    description = ("True when `a` and `b` are the same value (texts, numbers, lists and objects compared in "
                   "depth).")
    inputs = (Port("a", "any", required=False), Port("b", "any", required=False))
    outputs = (Port("result", "boolean"),)

    async def run(self, ctx: Context, *, a: Any = None, b: Any = None) -> dict[str, Any]:
        return {"result": bool(a == b)}


# --- lists ---------------------------------------------------------------------------------------------

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
    return [MathArithmetic, MathAdd, MathSubtract, MathMultiply, MathDivide, MathPower, MathModulo,
            MathCompare, MathClamp, MathRound, MathRandom, MathRemap, LogicIf, LogicSwitch, LogicRouter,
            LogicCoalesce, LogicAnd, LogicOr, LogicNot, LogicEquals, ListBuild, ListIndex, ListZip,
            ListFlatten, ListCount, ListSlice, ListRange, ListReverse, ListSort, ListUnique, ListConcat]
