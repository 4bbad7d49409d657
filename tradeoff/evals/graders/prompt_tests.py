"""Prompt tests: run the response's code against the tests the prompt itself states.

Reference-free, so a verifier that can run at serve time and be replayed on recorded responses:
the tests come from the prompt, not from an answer key. Three forms are recognised:

- `assert` lines (MBPP's "Your code should pass these tests: assert f(1) == 2");
- doctest examples (`>>> f(1)` then the expected output, as in HumanEval's docstrings);
- `Input: a = 1, b = [2]` / `Output: 3` example pairs (LiveCodeBench's functional problems),
  called on the last function the code defines (or the first method of a `Solution` class).

A prompt with none of these states nothing to check: the response passes (the verifier can
only reject code that fails the prompt's own examples). Code runs in `evals.sandbox`.
"""

from __future__ import annotations

import asyncio
import doctest
import re

from tradeoff.evals.graders.base import Grader, Item, Score, register_grader
from tradeoff.evals.graders.code import extract_code
from tradeoff.evals.sandbox import arun_python

_ASSERT = re.compile(r"^\s*(assert\s.+)$", re.MULTILINE)
_EXAMPLE = re.compile(r"^\s*Input:\s*(.+?)\s*\n\s*Output:\s*(.+?)\s*$", re.MULTILINE)

_CALL_EXAMPLES = """
def _target():
    if "Solution" in globals():
        solver = Solution()
        names = [n for n in vars(Solution) if not n.startswith("_")]
        return getattr(solver, names[0])
    funcs = [v for k, v in globals().items() if callable(v) and not k.startswith("_")
             and getattr(v, "__module__", None) == "__main__" and isinstance(v, type(_target))]
    return funcs[-1]
"""


def prompt_checks(prompt: str) -> str | None:
    """Python that checks a solution against the prompt's own tests, or None if it has none."""
    parts = list(_ASSERT.findall(prompt))
    examples = doctest.DocTestParser().get_examples(prompt)
    if examples:
        text = "".join(
            ">>> " + e.source.rstrip("\n").replace("\n", "\n... ") + "\n" + _want(e.want)
            for e in examples
        )
        parts.append(
            "import doctest as _doctest\n"
            f"_test = _doctest.DocTestParser().get_doctest({text!r}, globals(), 'prompt', None, 0)\n"
            "_runner = _doctest.DocTestRunner(optionflags=_doctest.NORMALIZE_WHITESPACE)\n"
            "_runner.run(_test, out=lambda s: None)\n"
            "assert _runner.failures == 0, 'a doctest example of the prompt fails'"
        )
    calls = [(args, want) for args, want in _EXAMPLE.findall(prompt) if "=" in args]
    if calls:
        parts.append(_CALL_EXAMPLES)
        parts += [f"assert _target()({args}) == {want}" for args, want in calls]
    return "\n".join(parts) if parts else None


def _want(text: str) -> str:
    """Expected output without a docstring's closing quotes (the parser reads them as output)."""
    lines = [line for line in text.splitlines() if line.strip() not in ('"""', "'''")]
    return "".join(f"{line}\n" for line in lines)


@register_grader("prompt_tests")
class PromptTestsGrader(Grader):
    """1 if the code passes the prompt's own tests (or the prompt states none)."""

    needs_reference = False

    async def agrade(self, response: str, item: Item) -> Score:
        tests = prompt_checks(item.prompt or "")
        if tests is None:
            return Score(1.0, "no tests in the prompt")
        result = await arun_python(
            f"{extract_code(response)}\n\n{tests}\n",
            timeout_s=float(self.option(item, "timeout_s", 10.0)),
            memory_mb=int(self.option(item, "memory_mb", 512)),
        )
        return Score(1.0) if result.passed else Score(0.0, result.reason)

    def grade(self, response: str, item: Item) -> Score:
        return asyncio.run(self.agrade(response, item))
