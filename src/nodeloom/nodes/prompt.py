"""Prompt helpers: merging comma-separated fragments and expanding `{red|green|blue}` wildcards."""

from __future__ import annotations

import itertools
import random
from typing import Any

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port

TEXT_IN = Port("text", "text")
TEXT_OUT = Port("text", "text")


class TextPromptCombine(Node):
    type = "text.prompt_combine"
    display_name = "Combine prompts"
    description = ("Merges comma-separated prompt fragments, dropping empty pieces and (optionally) repeated "
                   "ones.")
    inputs = tuple(Port(n, "text", required=n == "a") for n in ("a", "b", "c", "d"))
    params = (
        Param("separator", "text", default=", ", max_length=20),
        Param("dedupe", "boolean", default=True, description="Keep only the first of repeated fragments"),
    )
    outputs = (TEXT_OUT,)

    async def run(self, ctx: Context, *, a: str, separator: str, dedupe: bool, b: str | None = None,
                  c: str | None = None, d: str | None = None) -> dict[str, Any]:
        seen: set[str] = set()
        pieces = []
        for part in (a, b, c, d):
            for piece in (part or "").split(","):
                piece = piece.strip()
                key = " ".join(piece.casefold().split())
                if not piece or (dedupe and key in seen):
                    continue
                seen.add(key)
                pieces.append(piece)
        return {"text": separator.join(pieces)}


WILDCARD_MAX_DEPTH = 16
WILDCARD_MAX_TEMPLATE = 20_000

#: a parsed template is a sequence of literal strings and groups; a group is a list of alternative sequences
Sequence = list[Any]


def parse_wildcards(template: str) -> Sequence:
    """Parse `{a|b|{c|d}}` groups iteratively, so nesting cannot exhaust the stack; `\\{` escapes a brace."""
    root: Sequence = []
    current = root
    stack: list[tuple[list[Sequence], Sequence]] = []  # (alternatives, enclosing sequence)
    literal: list[str] = []

    def flush() -> None:
        if literal:
            current.append("".join(literal))
            literal.clear()

    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and i + 1 < len(template) and template[i + 1] in "{}|\\":
            literal.append(template[i + 1])
            i += 2
            continue
        if ch == "{":
            flush()
            if len(stack) >= WILDCARD_MAX_DEPTH:
                raise NodeError(f"wildcards nest deeper than {WILDCARD_MAX_DEPTH} levels",
                                code="invalid_template")
            alternatives: list[Sequence] = [[]]
            current.append(alternatives)
            stack.append((alternatives, current))
            current = alternatives[-1]
        elif ch == "|" and stack:
            flush()
            stack[-1][0].append([])
            current = stack[-1][0][-1]
        elif ch == "}" and stack:
            flush()
            current = stack.pop()[1]
        else:
            literal.append(ch)
        i += 1
    if stack:
        raise NodeError("a '{' is never closed (write \\{ for a literal brace)", code="invalid_template")
    flush()
    return root


def count_expansions(sequence: Sequence) -> int:
    total = 1
    for item in sequence:
        if not isinstance(item, str):
            total *= sum(count_expansions(alt) for alt in item)
    return total


def expand_all(sequence: Sequence) -> list[str]:
    choices: list[list[str]] = []
    for item in sequence:
        if isinstance(item, str):
            choices.append([item])
        else:
            choices.append([text for alt in item for text in expand_all(alt)])
    return ["".join(combo) for combo in itertools.product(*choices)]


def expand_random(sequence: Sequence, rng: random.Random) -> str:
    out = []
    for item in sequence:
        out.append(item if isinstance(item, str) else expand_random(item[rng.randrange(len(item))], rng))
    return "".join(out)


class TextWildcard(Node):
    type = "text.wildcard"
    display_name = "Wildcard prompt"
    description = ("Expands `{red|green|blue}` choices (nestable) either at random from `seed` or into every "
                   "combination.")
    inputs = (TEXT_IN, Port("seed", "integer", required=False, default=0))
    params = (
        Param("mode", "text", default="random", enum=("random", "all")),
        Param("count", "integer", default=1, min=1, max=1000, description="How many random prompts to draw"),
        Param("limit", "integer", default=1000, min=1, max=10000,
              description="Refuse more combinations than this"),
    )
    outputs = (TEXT_OUT, Port("texts", "list<text>"))

    async def run(self, ctx: Context, *, text: str, seed: int, mode: str, count: int,
                  limit: int) -> dict[str, Any]:
        if len(text) > WILDCARD_MAX_TEMPLATE:
            raise NodeError(f"wildcard templates are limited to {WILDCARD_MAX_TEMPLATE:,} characters",
                            code="invalid_template")
        parsed = parse_wildcards(text)
        if mode == "all":
            total = count_expansions(parsed)
            if total > limit:
                raise NodeError(f"the template has {total:,} combinations, over the limit of {limit:,}",
                                code="too_many_combinations")
            texts = expand_all(parsed)
        else:
            rng = random.Random(seed)
            texts = [expand_random(parsed, rng) for _ in range(count)]
        return {"text": texts[0], "texts": texts}


def nodes() -> list[type[Node]]:
    return [TextPromptCombine, TextWildcard]
