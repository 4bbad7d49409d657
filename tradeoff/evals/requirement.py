"""The requirement language: constraints a policy must meet, and what to optimise.

    accuracy >= 85% of baseline, reliability >= 110% of baseline and p95_latency <= 2s
    accuracy >= 0.9 and cost <= 40% of baseline; maximize accuracy

Metrics: `accuracy` and `reliability` (fractions; `90%` means 0.9), `cost` (USD per request,
`$` optional), `p95_latency` (needs a unit: `2s`, `800ms`) and `human_review` (the share of
requests sent to a human reviewer, `evals/reviewers.py`). `on every task` after a clause makes
it hold on each task, not only on the mix (`accuracy >= 90% of baseline on every task`). `N% of baseline` or `Nx baseline`
makes a bound relative to the baseline model. Bounds are `>=` or `<=` (a strict `>` is
rejected with a hint: a bound checked at a confidence level has no strict form). Clauses are joined by `and`, `,` or `;`; an
objective (`minimize cost`, `maximize accuracy`) may close the statement or come from `--minimize`.

It lives in evals, the lowest layer, because adaptive evaluation (`evals.adaptive`) races
candidates against a requirement's accuracy floors; fitting, replay and the loop read it through
`tradeoff.policies.requirement`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tradeoff.evals.errors import RequirementError

METRICS = ("accuracy", "reliability", "cost", "p95_latency", "human_review")
ALIASES = {
    "latency": "p95_latency",
    "p95": "p95_latency",
    "latency_p95": "p95_latency",
    "review": "human_review",
    "reviews": "human_review",
}
# Metrics that are shares of requests or items: a value is a fraction in [0, 1].
FRACTIONS = ("accuracy", "reliability", "human_review")
PER_TASK = (("on", "every", "task"), ("on", "each", "task"), ("per", "task"))
OPS = (">=", "<=")
_TOKEN = re.compile(
    r"\s*(?:(?P<op>>=|<=|=>|=<|>|<)"
    r"|(?P<num>\$?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?P<unit>\s*%|ms|s|x)?(?![A-Za-z0-9_])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)|(?P<sep>[,;])|(?P<bad>\S+))"
)


@dataclass(frozen=True)
class Constraint:
    """`metric op value`; with `relative`, value is a multiple of the baseline's metric."""

    metric: str
    op: str
    value: float
    relative: bool = False
    per_task: bool = False  # `on every task`: holds on each task's items, not only overall

    @property
    def lower_bound(self) -> bool:
        return self.op in (">=", ">")

    @property
    def baseline_holds(self) -> bool:
        """The baseline itself meets it, whatever the noise (`accuracy >= 95% of baseline`)."""
        return self.relative and (self.value <= 1 if self.lower_bound else self.value >= 1)

    def __str__(self) -> str:
        if self.relative:
            bound = f"{self.value * 100:g}% of baseline"
        elif self.metric == "p95_latency":
            bound = f"{self.value / 1000:g}s"
        elif self.metric == "cost":
            bound = f"${self.value:g}"
        else:
            bound = f"{self.value:g}"
        return f"{self.metric} {self.op} {bound}" + (" on every task" if self.per_task else "")


@dataclass(frozen=True)
class Objective:
    direction: str  # "minimize" | "maximize"
    metric: str

    def __str__(self) -> str:
        return f"{self.direction} {self.metric}"


@dataclass(frozen=True)
class Requirement:
    constraints: tuple[Constraint, ...]
    objective: Objective
    text: str = ""

    @property
    def uses_baseline(self) -> bool:
        return any(c.relative for c in self.constraints)

    def __str__(self) -> str:
        parts = [str(c) for c in self.constraints]
        return ", ".join(parts) + ("; " if parts else "") + str(self.objective)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int
    unit: str = ""


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        kind = m.lastgroup if m.lastgroup != "unit" else "num"
        if kind is None:  # only whitespace left
            break
        if kind == "num":
            unit = (m.group("unit") or "").strip()  # "95 %" is "95%"
            out.append(_Tok("num", m.group("num"), m.start("num"), unit))
        else:
            out.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def fail(self, what: str, tok: _Tok | None) -> RequirementError:
        at = f"at '{tok.text}{tok.unit}'" if tok else "at the end"
        return RequirementError(f'requirement: {what} {at} in "{self.text}"')

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok | None:
        tok = self.peek()
        self.i += tok is not None
        return tok

    def metric(self, tok: _Tok | None, after: str) -> str:
        if tok is None or tok.kind != "word":
            raise self.fail(f"expected a metric ({', '.join(METRICS)}) {after}", tok)
        name = ALIASES.get(tok.text.lower(), tok.text.lower())
        if name not in METRICS:
            raise self.fail(f"unknown metric (use {', '.join(METRICS)})", tok)
        return name

    def parse(self) -> tuple[list[Constraint], Objective | None]:
        constraints: list[Constraint] = []
        objective: Objective | None = None
        expect_clause = True
        while (tok := self.peek()) is not None:
            if not expect_clause:
                if tok.kind == "sep" or (tok.kind == "word" and tok.text.lower() == "and"):
                    self.take()
                    expect_clause = True
                    continue
                raise self.fail("expected 'and' or ',' between clauses", tok)
            if objective is not None:
                raise self.fail("the objective must come last", tok)
            if tok.kind == "word" and tok.text.lower() in (
                "minimize",
                "maximize",
                "minimise",
                "maximise",
            ):
                self.take()
                direction = "minimize" if tok.text.lower().startswith("minim") else "maximize"
                objective = Objective(direction, self.metric(self.take(), f"after '{tok.text}'"))
            else:
                constraints.append(self.constraint())
            expect_clause = False
        if expect_clause and (constraints or objective):
            raise self.fail("expected a clause after the last 'and' or ','", None)
        return constraints, objective

    def constraint(self) -> Constraint:
        metric = self.metric(self.take(), "at the start of a clause")
        op_tok = self.take()
        if op_tok is None or op_tok.kind != "op":
            raise self.fail(f"expected >= or <= after '{metric}'", op_tok)
        if op_tok.text in (">", "<"):
            # A bound is checked at a confidence level, never exactly at its value, so a strict
            # form would promise nothing more; say which form to write instead of guessing.
            raise self.fail(
                f"write {op_tok.text}= (bounds are checked with 95% confidence, so a strict "
                f"{op_tok.text} adds nothing)",
                op_tok,
            )
        op = {"=>": ">=", "=<": "<="}.get(op_tok.text, op_tok.text)
        num = self.take()
        if num is None or num.kind != "num":
            raise self.fail(f"expected a number after '{op_tok.text}'", num)
        value = float(num.text.lstrip("$"))
        relative = self.relative_tail(num)
        if num.unit == "%":
            value /= 100
        if relative:
            if num.unit not in ("%", "x"):
                raise self.fail("write a relative bound as N% of baseline or Nx baseline", num)
        elif num.unit == "x":
            raise self.fail("'x' needs 'baseline' after it", num)
        else:
            value = self.absolute(metric, value, num)
        tail = self.peek()
        per_task = self.per_task_tail()
        if per_task and metric not in ("accuracy", "cost"):
            raise self.fail(f"'on every task' applies to accuracy and cost, not {metric}", tail)
        return Constraint(metric, op, value, relative=relative, per_task=per_task)

    def per_task_tail(self) -> bool:
        """`on every task` (or `on each task`, `per task`) closing a clause."""
        for words in PER_TASK:
            toks = self.toks[self.i : self.i + len(words)]
            if len(toks) == len(words) and all(
                t.kind == "word" and t.text.lower().rstrip("s") == w.rstrip("s")
                for t, w in zip(toks, words, strict=True)
            ):
                self.i += len(words)
                return True
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.text.lower() in ("on", "per"):
            raise self.fail("expected 'on every task' after the bound", tok)
        return False

    def relative_tail(self, num: _Tok) -> bool:
        tok = self.peek()
        if tok is None or tok.kind != "word" or tok.text.lower() not in ("of", "baseline"):
            return False
        self.take()
        if tok.text.lower() == "of":
            base = self.take()
            if base is None or base.kind != "word" or base.text.lower() != "baseline":
                raise self.fail("expected 'baseline' after 'of'", base)
        return True

    def absolute(self, metric: str, value: float, num: _Tok) -> float:
        if metric == "p95_latency":
            if num.unit not in ("s", "ms"):
                raise self.fail("give p95_latency a unit (e.g. 2s or 800ms)", num)
            return value * 1000 if num.unit == "s" else value
        if num.unit in ("s", "ms"):
            raise self.fail(f"{metric} takes no time unit", num)
        if metric in FRACTIONS and not 0 <= value <= 1:
            hint = ""
            if 1 < value <= 100 and num.unit == "":
                hint = f": write {value / 100:g}, {num.text}% or {num.text}% of baseline"
            raise self.fail(f"{metric} is a fraction between 0 and 1 (or a percentage){hint}", num)
        return value


def parse_requirement(text: str, objective: str | None = None) -> Requirement:
    """Parse a statement; `objective` (e.g. "minimize cost") applies when the text has none."""
    constraints, found = _Parser(text).parse()
    if found is None:
        found = parse_objective(objective or "minimize cost")
    return Requirement(tuple(constraints), found, text.strip())


def parse_objective(text: str) -> Objective:
    """`minimize cost` / `maximize accuracy` (any metric)."""
    parser = _Parser(text)
    _, objective = parser.parse()
    if objective is None or parser.toks[0].kind != "word":
        raise RequirementError(
            f'objective: expected "minimize METRIC" or "maximize METRIC", got "{text}"'
        )
    return objective
