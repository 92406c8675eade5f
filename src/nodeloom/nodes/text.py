"""The text pack: string handling, regular expressions (with a time limit), JSON and JMESPath, and
conversions between numbers and text."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import jmespath
import jmespath.exceptions
import regex

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import MAX_JSON_DEPTH, Param, Port, too_deep
from nodeloom.media.sandbox import sandbox_for

MAX_TEXT = 1_000_000
REGEX_TIMEOUT_S = 1.0

TEXT_IN = Port("text", "text")
TEXT_OUT = Port("text", "text")


def as_text(value: Any) -> str:
    """How a non-text value reads inside text: numbers without a needless `.0`, JSON for the rest."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _check_length(text: str) -> None:
    if len(text) > MAX_TEXT:
        raise NodeError(f"the text is {len(text):,} characters, over the limit of {MAX_TEXT:,}",
                        code="text_too_long")


# --- strings -------------------------------------------------------------------------------------------


class TextConcat(Node):
    type = "text.concat"
    display_name = "Concatenate"
    description = "Joins up to four texts in order, with `separator` between those that are connected."
    inputs = (Port("a", "text"), Port("b", "text", required=False), Port("c", "text", required=False),
              Port("d", "text", required=False))
    params = (Param("separator", "text", default="", max_length=1000),)
    outputs = (TEXT_OUT,)

    async def run(self, ctx: Context, *, a: str, separator: str, b: str | None = None, c: str | None = None,
                  d: str | None = None) -> dict[str, Any]:
        joined = separator.join(t for t in (a, b, c, d) if t is not None)
        _check_length(joined)
        return {"text": joined}


class TextJoin(Node):
    type = "text.join"
    display_name = "Join list"
    description = ("Joins a list into one text with `separator`; numbers and JSON values are written out as "
                   "text.")
    inputs = (Port("items", "list<any>"),)
    params = (
        Param("separator", "text", default=", ", max_length=1000),
        Param("skipEmpty", "boolean", default=True, description="Leave out empty and null items"),
    )
    outputs = (TEXT_OUT,)

    async def run(self, ctx: Context, *, items: list[Any], separator: str, skipEmpty: bool) -> dict[str, Any]:
        parts = [as_text(v) for v in items if not (skipEmpty and (v is None or v == ""))]
        joined = separator.join(parts)
        _check_length(joined)
        return {"text": joined}


class TextSplit(Node):
    type = "text.split"
    display_name = "Split text"
    description = "Splits text at each `separator` (empty: at runs of whitespace) into a list of texts."
    inputs = (TEXT_IN,)
    params = (
        Param("separator", "text", default=",", max_length=1000,
              description="Use \\n for lines; empty for whitespace"),
        Param("trim", "boolean", default=True, description="Strip whitespace around each part"),
        Param("skipEmpty", "boolean", default=True),
        Param("limit", "integer", default=0, min=0, max=100000,
              description="At most this many parts (0: no limit)"),
    )
    outputs = (Port("items", "list<text>"), Port("count", "integer"))

    async def run(self, ctx: Context, *, text: str, separator: str, trim: bool, skipEmpty: bool,
                  limit: int) -> dict[str, Any]:
        splits = limit - 1 if limit else -1
        parts = text.split(separator or None, splits)
        if trim:
            parts = [p.strip() for p in parts]
        if skipEmpty:
            parts = [p for p in parts if p]
        return {"items": parts, "count": len(parts)}


class TextReplace(Node):
    type = "text.replace"
    display_name = "Replace text"
    description = "Replaces occurrences of `find` with `replace` (plain text, not a pattern)."
    inputs = (TEXT_IN, Port("find", "text"), Port("replace", "text", required=False, default=""))
    params = (
        Param("count", "integer", default=0, min=0, max=1_000_000,
              description="Replace at most this many (0: all)"),
        Param("caseSensitive", "boolean", default=True),
    )
    outputs = (TEXT_OUT, Port("replacements", "integer"))

    async def run(self, ctx: Context, *, text: str, find: str, replace: str, count: int,
                  caseSensitive: bool) -> dict[str, Any]:
        if not find:
            return {"text": text, "replacements": 0}
        flags = 0 if caseSensitive else re.IGNORECASE
        result, done = re.subn(re.escape(find), lambda _m: replace, text, count=count, flags=flags)
        _check_length(result)
        return {"text": result, "replacements": done}


def regex_flags(ignore_case: bool, multiline: bool, dot_all: bool) -> int:
    return ((regex.IGNORECASE if ignore_case else 0) | (regex.MULTILINE if multiline else 0)
            | (regex.DOTALL if dot_all else 0))


def compile_pattern(pattern: str, flags: int) -> Any:
    """Compile a pattern: in the sandbox only (`regex_find_all`, `regex_substitute`), never in the server."""
    try:
        return regex.compile(pattern, flags)
    except (regex.error, OverflowError, RecursionError) as exc:
        raise NodeError(f"invalid regular expression: {exc}", code="invalid_pattern") from exc


def _search(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except TimeoutError as exc:
        raise NodeError(f"the regular expression took longer than {REGEX_TIMEOUT_S:g} s (catastrophic "
                        "backtracking?); simplify the pattern", code="regex_timeout") from exc
    except (IndexError, regex.error) as exc:
        raise NodeError(f"regular expression failed: {exc}", code="invalid_pattern") from exc


def regex_find_all(pattern: str, flags: int, text: str, group: int, limit: int) -> list[str]:
    """Runs in the sandbox: compile, check the group, collect up to `limit` matches."""
    compiled = compile_pattern(pattern, flags)
    if group > compiled.groups:
        raise NodeError(f"the pattern has no capture group {group}", code="invalid_pattern")

    def collect() -> list[str]:
        found = []
        for match in compiled.finditer(text, timeout=REGEX_TIMEOUT_S):
            found.append(match.group(group) or "")
            if len(found) >= limit:
                break
        return found

    return list(_search(collect))


def regex_substitute(pattern: str, flags: int, text: str, replacement: str, count: int) -> tuple[str, int]:
    """Runs in the sandbox: compile and substitute; a result over the text limit is refused there."""
    compiled = compile_pattern(pattern, flags)
    result, done = _search(compiled.subn, replacement, text, count=count, timeout=REGEX_TIMEOUT_S)
    _check_length(result)
    return result, done


#: the largest count a counted repetition (`x{n}`, `x{m,n}`) may ask for, alone or nested (`(x{100}){100}`)
MAX_REPEAT = 10_000
_QUANTIFIER = regex.compile(r"\{(\d*)(?:,(\d*))?\}")


def repetition_problem(pattern: str, bound: int = MAX_REPEAT) -> str | None:
    """A counted repetition past `bound` (nested counts multiply), found without compiling the pattern; None when
    there is none. Such a pattern is refused when the graph is validated, before anything compiles it."""
    frames = [1]  # the largest repeat product inside each open group
    last = 0  # the repeat weight of the atom a quantifier would apply to (0: none)
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            i, last = i + 2, 1
            frames[-1] = max(frames[-1], 1)
            continue
        if ch == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i, last = j + 1, 1
            continue
        if ch == "(":
            frames.append(1)
            i, last = i + 1, 0
            continue
        if ch == ")":
            inner = frames.pop() if len(frames) > 1 else 1
            i, last = i + 1, inner
            frames[-1] = max(frames[-1], inner)
            continue
        if ch == "{":
            m = _QUANTIFIER.match(pattern, i)
            if m and (m.group(1) or m.group(2)) and last:
                counts = [int(g) for g in m.groups() if g]
                count = max(counts)
                weight = last * count
                if count > bound or weight > bound:
                    return (f"the counted repetition {m.group(0)} asks for {weight:,} repeats; at most "
                            f"{bound:,} are allowed")
                frames[-1] = max(frames[-1], weight)
                i, last = m.end(), weight
                continue
        if ch not in "*+?|^$":
            last = 1
            frames[-1] = max(frames[-1], 1)
        i += 1
    return None


@dataclass(frozen=True)
class PatternParam(Param):
    """A regular expression param: refused at validation (422) when it asks for more repeats than a budget allows."""

    def check(self, value: Any) -> tuple[Any, str | None]:
        value, problem = super().check(value)
        if problem is None and isinstance(value, str):
            problem = repetition_problem(value)
        return value, problem


REGEX_FLAGS = (
    Param("ignoreCase", "boolean", default=False),
    Param("multiline", "boolean", default=False, description="^ and $ match at every line"),
    Param("dotAll", "boolean", default=False, description=". also matches newlines"),
)


async def _run_regex(ctx: Context, fn: Any, *args: Any) -> Any:
    """Run a regex function in the sandbox: compiling and matching happen there, under its budgets."""
    return await sandbox_for(ctx).run(fn, *args)


class TextRegexExtract(Node):
    type = "text.regex_extract"
    display_name = "Regex extract"
    description = ("Finds matches of a regular expression and returns the first, all of them, and whether "
                   "any matched.")
    inputs = (TEXT_IN,)
    params = (
        PatternParam("pattern", "text", required=True, max_length=2000),
        Param("group", "integer", default=0, min=0, max=99,
              description="Capture group to return (0: whole match)"),
        Param("limit", "integer", default=1000, min=1, max=100000,
              description="Stop after this many matches"),
        *REGEX_FLAGS,
    )
    outputs = (Port("match", "text"), Port("matches", "list<text>"), Port("found", "boolean"))

    async def run(self, ctx: Context, *, text: str, pattern: str, group: int, limit: int, ignoreCase: bool,
                  multiline: bool, dotAll: bool) -> dict[str, Any]:
        _check_length(text)
        flags = regex_flags(ignoreCase, multiline, dotAll)
        found = await _run_regex(ctx, regex_find_all, pattern, flags, text, group, limit)
        return {"match": found[0] if found else "", "matches": found, "found": bool(found)}


class TextRegexReplace(Node):
    type = "text.regex_replace"
    display_name = "Regex replace"
    description = ("Replaces matches of a regular expression; `replacement` may refer to groups as \\1 or "
                   "\\g<name>.")
    inputs = (TEXT_IN,)
    params = (
        PatternParam("pattern", "text", required=True, max_length=2000),
        Param("replacement", "text", default="", max_length=10000),
        Param("count", "integer", default=0, min=0, max=1_000_000,
              description="Replace at most this many (0: all)"),
        *REGEX_FLAGS,
    )
    outputs = (TEXT_OUT, Port("replacements", "integer"))

    async def run(self, ctx: Context, *, text: str, pattern: str, replacement: str, count: int,
                  ignoreCase: bool, multiline: bool, dotAll: bool) -> dict[str, Any]:
        _check_length(text)
        flags = regex_flags(ignoreCase, multiline, dotAll)
        result, done = await _run_regex(ctx, regex_substitute, pattern, flags, text, replacement, count)
        return {"text": result, "replacements": done}


def _words(text: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    return [w for w in re.split(r"[\W_]+", spaced) if w]


CASE_MODES = ("upper", "lower", "title", "sentence", "swap", "snake", "kebab", "camel", "pascal")


def change_case(text: str, mode: str) -> str:
    if mode == "upper":
        return text.upper()
    if mode == "lower":
        return text.lower()
    if mode == "title":
        return re.sub(r"[^\W_]+('[^\W_]+)?", lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), text)
    if mode == "sentence":
        lowered = text.lower()
        return re.sub(r"(^\s*|[.!?]\s+)([^\W_])", lambda m: m.group(1) + m.group(2).upper(), lowered)
    if mode == "swap":
        return text.swapcase()
    words = [w.lower() for w in _words(text)]
    if mode == "snake":
        return "_".join(words)
    if mode == "kebab":
        return "-".join(words)
    if mode == "camel":
        return "".join(w if i == 0 else w.capitalize() for i, w in enumerate(words))
    return "".join(w.capitalize() for w in words)  # pascal


class TextCase(Node):
    type = "text.case"
    display_name = "Change case"
    description = ("Changes letter case: upper, lower, title, sentence, swapped, or snake_case, kebab-case, "
                   "camelCase, PascalCase.")
    inputs = (TEXT_IN,)
    params = (Param("mode", "text", default="lower", enum=CASE_MODES),)
    outputs = (TEXT_OUT,)

    async def run(self, ctx: Context, *, text: str, mode: str) -> dict[str, Any]:
        return {"text": change_case(text, mode)}


class TextTrim(Node):
    type = "text.trim"
    display_name = "Trim text"
    description = ("Strips whitespace (or the given `chars`) from the ends, and can collapse inner runs of "
                   "whitespace.")
    inputs = (TEXT_IN,)
    params = (
        Param("side", "text", default="both", enum=("both", "start", "end")),
        Param("chars", "text", default="", max_length=100,
              description="Characters to strip (empty: whitespace)"),
        Param("collapse", "boolean", default=False,
              description="Turn every run of whitespace into one space"),
    )
    outputs = (TEXT_OUT,)

    async def run(self, ctx: Context, *, text: str, side: str, chars: str, collapse: bool) -> dict[str, Any]:
        if collapse:
            text = re.sub(r"\s+", " ", text)
        strip = {"both": str.strip, "start": str.lstrip, "end": str.rstrip}[side]
        return {"text": strip(text, chars or None)}


class TextTruncate(Node):
    type = "text.truncate"
    display_name = "Truncate text"
    description = ("Shortens text to at most `length` characters, ending with `ellipsis`, preferably at a "
                   "word break.")
    inputs = (TEXT_IN,)
    params = (
        Param("length", "integer", default=100, min=0, max=MAX_TEXT,
              description="Maximum length, ellipsis included"),
        Param("ellipsis", "text", default="…", max_length=20),
        Param("words", "boolean", default=True, description="Cut at the last word break that fits"),
    )
    outputs = (TEXT_OUT, Port("truncated", "boolean"))

    async def run(self, ctx: Context, *, text: str, length: int, ellipsis: str,
                  words: bool) -> dict[str, Any]:
        if len(text) <= length:
            return {"text": text, "truncated": False}
        room = length - len(ellipsis)
        if room <= 0:
            return {"text": ellipsis[:length], "truncated": True}
        cut = text[:room]
        if words and not text[room].isspace():
            head = cut.rsplit(None, 1)[0] if any(ch.isspace() for ch in cut) else cut
            cut = head if head else cut
        return {"text": cut.rstrip() + ellipsis, "truncated": True}


class TextLength(Node):
    type = "text.length"
    display_name = "Text length"
    description = "Counts the characters, words or lines in the text."
    inputs = (TEXT_IN,)
    params = (Param("unit", "text", default="characters", enum=("characters", "words", "lines")),)
    outputs = (Port("length", "integer"),)

    async def run(self, ctx: Context, *, text: str, unit: str) -> dict[str, Any]:
        if unit == "words":
            return {"length": len(text.split())}
        if unit == "lines":
            return {"length": len(text.splitlines())}
        return {"length": len(text)}


class TextContains(Node):
    type = "text.contains"
    display_name = "Text contains"
    description = "Tells whether the text contains, starts with, ends with or equals `search`."
    inputs = (TEXT_IN, Port("search", "text"))
    params = (
        Param("mode", "text", default="contains", enum=("contains", "starts-with", "ends-with", "equals")),
        Param("caseSensitive", "boolean", default=True),
    )
    outputs = (Port("result", "boolean"),)

    async def run(self, ctx: Context, *, text: str, search: str, mode: str,
                  caseSensitive: bool) -> dict[str, Any]:
        if not caseSensitive:
            text, search = text.casefold(), search.casefold()
        test = {"contains": str.__contains__, "starts-with": str.startswith, "ends-with": str.endswith,
                "equals": str.__eq__}[mode]
        return {"result": bool(test(text, search))}


# --- JSON ----------------------------------------------------------------------------------------------


class TextJsonParse(Node):
    type = "text.json_parse"
    display_name = "Parse JSON"
    description = "Parses text as JSON (for example an LLM's reply) into a value other nodes can query."
    inputs = (TEXT_IN,)
    outputs = (Port("value", "json"),)

    async def run(self, ctx: Context, *, text: str) -> dict[str, Any]:
        _check_length(text)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NodeError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                            code="invalid_json") from exc
        except RecursionError as exc:
            raise NodeError("the JSON is nested too deeply", code="invalid_json") from exc
        if too_deep(value):
            raise NodeError(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep", code="invalid_json")
        return {"value": value}


class TextJsonStringify(Node):
    type = "text.json_stringify"
    display_name = "Write JSON"
    description = "Writes any JSON value out as text, compact or indented."
    inputs = (Port("value", "any"),)
    params = (
        Param("indent", "integer", default=0, min=0, max=8, description="0 writes everything on one line"),
        Param("sortKeys", "boolean", default=False),
    )
    outputs = (TEXT_OUT,)

    async def run(self, ctx: Context, *, indent: int, sortKeys: bool, value: Any = None) -> dict[str, Any]:
        try:
            text = json.dumps(value, indent=indent or None, sort_keys=sortKeys, ensure_ascii=False,
                              separators=None if indent else (",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise NodeError(f"the value cannot be written as JSON: {exc}", code="invalid_input") from exc
        _check_length(text)
        return {"text": text}


class JsonQuery(Node):
    type = "json.query"
    display_name = "JSON query (JMESPath)"
    description = ("Picks or reshapes parts of a JSON value with a JMESPath expression, such as "
                   "people[?age > `30`].name.")
    inputs = (Port("data", "json"),)
    params = (Param("expression", "text", required=True, max_length=2000),)
    outputs = (Port("result", "any"),)

    async def run(self, ctx: Context, *, data: Any, expression: str) -> dict[str, Any]:
        # a query can be made to run long (nested projections, sort_by over a large input): in the sandbox
        return {"result": await sandbox_for(ctx).run(json_search, expression, data)}


def json_search(expression: str, data: Any) -> Any:
    """Runs in the sandbox: compile and apply a JMESPath expression."""
    try:
        compiled = jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise NodeError(f"invalid JMESPath expression: {exc}", code="invalid_expression") from exc
    try:
        return compiled.search(data)
    except jmespath.exceptions.JMESPathError as exc:
        raise NodeError(f"JMESPath query failed: {exc}", code="invalid_expression") from exc


# --- numbers -------------------------------------------------------------------------------------------


class TextNumberToText(Node):
    type = "text.number_to_text"
    display_name = "Number to text"
    description = ("Writes a number as text with a fixed number of `decimals` (or as many as needed) and "
                   "optional thousands separators.")
    inputs = (Port("value", "number"),)
    params = (
        Param("decimals", "integer", default=-1, min=-1, max=20, description="-1 writes as many as needed"),
        Param("thousands", "boolean", default=False, description="Group thousands with commas"),
    )
    outputs = (TEXT_OUT,)

    async def run(self, ctx: Context, *, value: float, decimals: int, thousands: bool) -> dict[str, Any]:
        group = "," if thousands else ""
        if decimals >= 0:
            return {"text": f"{value:{group}.{decimals}f}"}
        if isinstance(value, int) or (value.is_integer() and abs(value) < 2**53):
            return {"text": f"{int(value):{group}d}"}
        return {"text": format(value, group) if thousands else repr(value)}


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
#: the leftmost number in a sentence, read with thousands separators when it has them
_FIRST_NUMBER = re.compile(rf"{_GROUPED.pattern}(?!\d)|{_NUMBER.pattern}")


class TextToNumber(Node):
    type = "text.to_number"
    display_name = "Text to number"
    description = "Reads a number from text (\"3.5\", \"1,250\"), optionally the first one inside a sentence."
    inputs = (TEXT_IN,)
    params = (
        Param("extract", "boolean", default=False,
              description="Take the first number found anywhere in the text"),
        Param("default", "number", description="Used when no number is found (empty: fail instead)"),
    )
    outputs = (Port("value", "number"), Port("valid", "boolean"))

    async def run(self, ctx: Context, *, text: str, extract: bool, default: float | None) -> dict[str, Any]:
        candidate = text.strip()
        if extract:
            found = _FIRST_NUMBER.search(candidate)
            candidate = found.group(0) if found else ""
        if _GROUPED.fullmatch(candidate):
            candidate = candidate.replace(",", "")
        if _NUMBER.fullmatch(candidate) and len(candidate) <= 400:
            number = int(candidate) if _INTEGER.fullmatch(candidate) else float(candidate)
            if math.isfinite(number):
                return {"value": number, "valid": True}
        if default is None:
            raise NodeError(f"'{text[:80]}' is not a number", code="invalid_input")
        return {"value": default, "valid": False}


def nodes() -> list[type[Node]]:
    return [TextConcat, TextJoin, TextSplit, TextReplace, TextRegexExtract, TextRegexReplace, TextCase,
            TextTrim, TextTruncate, TextLength, TextContains, TextJsonParse, TextJsonStringify, JsonQuery,
            TextNumberToText, TextToNumber]
