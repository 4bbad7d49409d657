"""Code execution: run the response's code against the item's unit tests in the sandbox.

Tests come from item metadata `tests` (MBPP's `test_list`: a list of assert lines, or one
string), else the reference. MBPP's `test_setup_code` runs first when given as `test_setup`.
HumanEval items set `entry_point`: their tests define `check(candidate)`, which is called on it.
The tests belong to the item, not to an answer, so this grader is reference-free (a verifier).
"""

from __future__ import annotations

import asyncio
import re

from tradeoff.evals.graders.base import Grader, Item, Score, register_grader
from tradeoff.evals.sandbox import arun_python

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


def extract_code(response: str) -> str:
    """The fenced code blocks of a response, joined; the whole response when there are none."""
    blocks = _FENCE.findall(response)
    return "\n\n".join(blocks) if blocks else response


def program_for(response: str, item: Item) -> str | None:
    """Code + tests as one script, or None when the item has no tests."""
    tests = item.metadata.get("tests") or item.reference
    if isinstance(tests, list):
        tests = "\n".join(str(t) for t in tests)
    if not tests:
        return None
    parts = [str(item.metadata.get("test_setup") or ""), extract_code(response), str(tests)]
    entry_point = item.metadata.get("entry_point")
    if entry_point:
        parts.append(f"check({entry_point})")
    return "\n\n".join(p for p in parts if p)


@register_grader("code")
class CodeGrader(Grader):
    """1 if the code passes every test within `timeout_s` (default 10) and `memory_mb` (512)."""

    needs_reference = False

    async def agrade(self, response: str, item: Item) -> Score:
        program = program_for(response, item)
        if program is None:
            return Score(0.0, "item has no tests")
        result = await arun_python(
            program,
            timeout_s=float(self.option(item, "timeout_s", 10.0)),
            memory_mb=int(self.option(item, "memory_mb", 512)),
        )
        return Score(1.0) if result.passed else Score(0.0, result.reason)

    def grade(self, response: str, item: Item) -> Score:
        return asyncio.run(self.agrade(response, item))
