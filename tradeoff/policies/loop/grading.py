"""Grading a shadow pair: the routed answer and the baseline's answer to the same request.

`PairGrader.grade(pair) -> PairScore` gives the two scores (r for the routed answer, s for the
baseline's) on one scale, so the monitor's kept accuracy E[r] / E[s] means the same thing for
every grader (policies/loop/monitor.py):

- `agreement`: the baseline's answer is the reference. r = 1 when the two answers match after
  normalisation (the `normalized_exact` grader: case, punctuation, articles, spaces), else 0;
  s = 1. Kept accuracy = the share of requests answered as the baseline answers them. Cheap, and
  right for short answers; it counts an answer that differs from a wrong baseline as lost.
- any other reference-based grader (`numeric`, `choice`, `contains`, ...): the same, with that
  grader's notion of a match.
- `judge:MODEL`: a pairwise judge (MODEL from models.yaml) is asked which answer is better, once
  with each answer first (to cancel position bias). Per order the routed answer wins 1, ties 1/2
  and loses 0; r = its mean w, s = 1 - w. Parity (all ties) keeps 100%.
- a reference-free grader (`json_valid`, `answer_parses`, `code`, ...): it scores each answer
  on its own; r and s are those scores.
- a pair whose routed model *is* the baseline is never graded: r = s = 1 (free, kept).

Explored candidates (policies/loop/explore.py) are graded the same way, each against the
baseline's answer; the baseline's own score on such a request is `PairGrader.reference`, one
value for every candidate: 1 for a reference-based grader, its own score for a reference-free
one, 1/2 for the judge (a tie with itself, so a candidate's win share over 1/2 is its kept
accuracy).

Graders come from `evals.graders`; the judge's calls go through `ask`, which the proxy builds on
its own upstream adapter.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tradeoff.evals.errors import UsageError
from tradeoff.evals.graders import Grader, GradingError, Item, get_grader

__all__ = ["FREE", "Pair", "PairGrader", "PairScore", "build_pair_grader"]

Ask = Callable[[str, list[dict[str, Any]]], Awaitable[tuple[str, float]]]


@dataclass(frozen=True)
class Pair:
    """What grading sees of one shadowed request."""

    request_id: str
    prompt: str
    routed: str  # the text the client got
    baseline: str  # the baseline's text for the same request
    task: str | None = None
    messages: list[dict[str, Any]] | None = None

    def item(self, reference: str | None = None) -> Item:
        return Item(
            dataset="traffic",
            item_id=self.request_id,
            task=self.task or "",
            prompt=self.prompt,
            messages=self.messages,
            reference=reference,
        )


@dataclass(frozen=True)
class PairScore:
    routed: float
    baseline: float
    cost_usd: float = 0.0  # what grading itself spent (judge calls)


FREE = PairScore(1.0, 1.0)


class PairGrader(ABC):
    """Scores one pair; raises GradingError when it cannot (the pair is then not counted)."""

    name: str

    @abstractmethod
    async def grade(self, pair: Pair) -> PairScore:
        """(r, s) for the routed and the baseline answer of `pair`."""

    def reference(self, scores: list[PairScore]) -> float:
        """The baseline answer's score beside several answers graded against it (`scores`)."""
        return scores[0].baseline


class MatchGrader(PairGrader):
    """A reference-based grader with the baseline's answer as the reference (s = 1)."""

    def __init__(self, name: str, grader: Grader) -> None:
        self.name, self.grader = name, grader

    async def grade(self, pair: Pair) -> PairScore:
        score = await self.grader.agrade(pair.routed, pair.item(reference=pair.baseline))
        return PairScore(_unit(score.value), 1.0)


class VerifierGrader(PairGrader):
    """A reference-free grader scoring each answer on its own."""

    def __init__(self, name: str, grader: Grader) -> None:
        self.name, self.grader = name, grader

    async def grade(self, pair: Pair) -> PairScore:
        item = pair.item()
        routed = await self.grader.agrade(pair.routed, item)
        baseline = await self.grader.agrade(pair.baseline, item)
        return PairScore(_unit(routed.value), _unit(baseline.value))


JUDGE_PROMPT = """You are comparing two answers to the same request.

Request:
{question}

Answer A:
{first}

Answer B:
{second}

Which answer is better: more correct, more complete, more useful? Judge the content, not the
length or the style. Explain briefly, then end with one line `VERDICT: A`, `VERDICT: B` or
`VERDICT: TIE`."""
_VERDICT = re.compile(r"VERDICT:\s*(A|B|TIE)\b", re.IGNORECASE)


class PairwiseJudge(PairGrader):
    """Asks a judge model for a preference in both orders; see the module docstring."""

    def __init__(self, model: str, ask: Ask) -> None:
        self.name, self.model, self.ask = f"judge:{model}", model, ask

    def reference(self, scores: list[PairScore]) -> float:
        return 0.5

    async def _verdict(self, question: str, first: str, second: str) -> tuple[str, float]:
        prompt = JUDGE_PROMPT.format(question=question, first=first, second=second)
        text, cost = await self.ask(self.model, [{"role": "user", "content": prompt}])
        found = _VERDICT.findall(text or "")
        if not found:
            raise GradingError(f"judge {self.model} gave no `VERDICT:` line")
        return found[-1].upper(), cost

    async def grade(self, pair: Pair) -> PairScore:
        routed_first, cost_a = await self._verdict(pair.prompt, pair.routed, pair.baseline)
        baseline_first, cost_b = await self._verdict(pair.prompt, pair.baseline, pair.routed)
        wins = {"A": 1.0, "TIE": 0.5, "B": 0.0}[routed_first]
        wins += {"B": 1.0, "TIE": 0.5, "A": 0.0}[baseline_first]
        share = wins / 2
        return PairScore(share, 1.0 - share, cost_a + cost_b)


def build_pair_grader(spec: str, ask: Ask | None = None) -> PairGrader:
    """`agreement`, `judge:MODEL`, or any registered grader (see the module docstring)."""
    if spec == "agreement":
        return MatchGrader("agreement", get_grader("normalized_exact"))
    if spec.startswith("judge:"):
        model = spec.split(":", 1)[1]
        if not model:
            raise UsageError("--shadow-grader judge:MODEL needs a model name from models.yaml")
        if ask is None:
            raise UsageError(f"--shadow-grader {spec} needs the proxy's models to ask the judge")
        return PairwiseJudge(model, ask)
    if spec == "judge":
        raise UsageError("name the judge's model: --shadow-grader judge:MODEL (from models.yaml)")
    grader = get_grader(spec)
    if grader.needs_reference:
        return MatchGrader(spec, grader)
    return VerifierGrader(spec, grader)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
