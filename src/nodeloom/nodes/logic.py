"""The logic pack: arithmetic and comparisons, seeded random numbers, branching (if, switch, router,
coalesce) and boolean algebra.

Every branch input is computed before the node runs: `logic.if` chooses between values, it does not
skip the work that produced the other one.
"""

from __future__ import annotations

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
        return {"value": min(max(value, low), high)}


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


def nodes() -> list[type[Node]]:
    return [MathArithmetic, MathAdd, MathSubtract, MathMultiply, MathDivide, MathPower, MathModulo,
            MathCompare, MathClamp, MathRound, MathRandom, MathRemap, LogicIf, LogicSwitch, LogicRouter,
            LogicCoalesce, LogicAnd, LogicOr, LogicNot, LogicEquals]
