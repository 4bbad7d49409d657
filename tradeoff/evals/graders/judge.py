"""LLM-as-judge: a configured model scores the response against a rubric.

Build it with `get_grader("judge", model=<ModelEntry>)` (the runner's `--judge NAME`). The
rubric is the item's `rubric` metadata, else the grader's `rubric` option, else a default that
compares with the reference. The judge answers with a last line `SCORE: n` (0-10), scaled to
[0, 1]. Needs no reference when the rubric says what a good answer is, so it can verify.
A judge call that fails raises `GradingError`; the runner records that outcome as an error.
"""

from __future__ import annotations

import asyncio
import re

from tradeoff.evals.errors import TradeoffError, UsageError
from tradeoff.evals.graders.base import Grader, Item, Score, register_grader
from tradeoff.evals.registry import ModelEntry

DEFAULT_RUBRIC = (
    "Score 10 if the response is correct and answers the question completely, 0 if it is wrong "
    "or does not answer. Use the reference answer, when given, as the ground truth."
)
TEMPLATE = """You are grading an answer to a question.

Rubric: {rubric}

Question:
{question}

Reference answer (may be empty):
{reference}

Response to grade:
{response}

Explain briefly, then end with one line of the form `SCORE: n` where n is 0 to 10."""
_SCORE = re.compile(r"SCORE:\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


class GradingError(TradeoffError):
    """A grader could not score a response (its judge call failed, say)."""


@register_grader("judge")
class JudgeGrader(Grader):
    """Asks the judge model (option `model`, a ModelEntry) to score 0-10 by the rubric."""

    needs_reference = False

    def check(self) -> None:
        model = self.options.get("model")
        if not isinstance(model, ModelEntry):
            raise UsageError(
                "grader judge needs a judge model: pass --judge NAME (from models.yaml)"
            )
        from tradeoff.evals.llm import call_kwargs, token_prices

        call_kwargs(model)  # a missing env key fails now, not on every grading call
        self.prices = token_prices(model)  # unknown price fails now, before any call
        self.spend_usd = 0.0

    async def agrade(self, response: str, item: Item) -> Score:
        from tradeoff.evals.call import acomplete

        question = item.prompt or "\n".join(str(m.get("content", "")) for m in item.chat())
        prompt = TEMPLATE.format(
            rubric=self.option(item, "rubric", DEFAULT_RUBRIC),
            question=question,
            reference=item.reference or "",
            response=response,
        )
        result = await acomplete(
            self.options["model"],
            [{"role": "user", "content": prompt}],
            {"temperature": 0},
            prices=self.prices,
        )
        self.spend_usd += result.cost_usd
        if not result.ok:
            raise GradingError(f"judge call failed: {result.error}")
        found = _SCORE.findall(result.text)
        if not found:
            raise GradingError("judge reply has no `SCORE: n` line")
        return Score(min(1.0, max(0.0, float(found[-1]) / 10)), result.text[-300:])

    def grade(self, response: str, item: Item) -> Score:
        return asyncio.run(self.agrade(response, item))
