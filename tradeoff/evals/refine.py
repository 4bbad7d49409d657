"""Generate, verify, refine: a model that checks its own answer and tries again.

A refine variant (`variants: [{name: fix, refine: {rounds: 2}}]` in models.yaml, optional
`verifier: NAME`) answers, has the answer checked, and on failure sends the check's message back
to the same model as a new user turn ("Your answer failed: ... Fix it."), up to `rounds` more
times; with `escalate: MODEL`, an answer still failing after the last round (or a round that
errored) is asked of that model instead, once, with the original messages. The check
(`verifier_for`):

- a tool-call answer, when the request offers `tools`: its arguments against the called tool's
  schema (the `tool_calls` grader; the proxy makes the same check, router/refine.py);
- a text answer: the variant's `verifier:`, a reference-free grader or `module:function`, when
  it names one; else what the request itself makes checkable: its `response_format` (a
  `json_schema`'s schema, or "is JSON" for `json_object`);
- else nothing: one round, like the plain model.

The eval runner runs `refine()` with its `call` (one measured call of the model on given
messages); the proxy runs the same loop over its own upstream calls with the same checks
(router/refine.py), so what `eval` measured is what the proxy serves (but for a round whose
call fails: the eval escalates, the proxy falls back along the plan as for any model). The
outcome is the last round's answer; its tokens and cost are every round's sum (the escalation's
included), its latency the loop's. `Refined` keeps each round, for the eval's per-round records.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tradeoff.evals.call import CallResult
from tradeoff.evals.graders import Grader, Item, get_grader

if TYPE_CHECKING:
    from tradeoff.evals.registry import ModelEntry

FAILED = "Your answer failed: {why}. Fix it."


@dataclass(frozen=True)
class RefineSpec:
    """A refine variant's settings: how many more tries, and the named verifier (if any)."""

    rounds: int
    verifier: str | None = None
    escalate: str | None = None  # the model asked after the last failed round


@dataclass
class Refined:
    """The loop's outcome: the final answer with every round's cost, and each round (the
    escalation's last, when `escalated`)."""

    result: CallResult
    rounds: list[CallResult] = field(default_factory=list)
    passed: list[bool] = field(default_factory=list)  # each round's verdict
    escalated: bool = False

    @property
    def count(self) -> int:
        return len(self.rounds)

    def records(self, model: str, escalate: str | None) -> list[dict[str, Any]]:
        """Each round as the store keeps it (store/rounds.py), without its outcome's key."""
        return [
            {
                "round": i,
                "called": escalate if self.escalated and i == self.count else model,
                "passed": passed,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "cost_usd": r.cost_usd,
                "latency_ms": r.latency_ms,
                "error": r.error,
            }
            for i, (r, passed) in enumerate(zip(self.rounds, self.passed, strict=True), start=1)
        ]


def refine_spec(entry: ModelEntry) -> RefineSpec | None:
    """The entry's refine settings, None for a model that answers once."""
    raw = entry.extra.get("refine")
    if not isinstance(raw, dict):
        return None
    return RefineSpec(
        rounds=int(raw.get("rounds", 1)),
        verifier=raw.get("verifier") or None,
        escalate=raw.get("escalate") or None,
    )


def escalations(entries: Mapping[str, ModelEntry]) -> set[str]:
    """The models these entries' refine variants escalate to."""
    specs = (refine_spec(e) for e in entries.values())
    return {s.escalate for s in specs if s is not None and s.escalate}


def verifier_for(spec: RefineSpec, settings: dict[str, Any]) -> Grader | None:
    """The check of an answer to a request with these settings (see the module's docstring)."""
    text = _text_check(spec, settings)
    if settings.get("tools"):
        return get_grader("tool_calls", tools=settings["tools"], text_check=text, calls_only=False)
    return text


def _text_check(spec: RefineSpec, settings: dict[str, Any]) -> Grader | None:
    if spec.verifier:
        return get_grader(spec.verifier)
    fmt = settings.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return get_grader("json_schema", schema=schema)
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        return get_grader("json_valid")
    return None


async def failure(verifier: Grader, text: str, item: Item) -> str | None:
    """Why `text` fails the check, or None when it passes."""
    try:
        score = await verifier.agrade(text, item)
    except Exception:  # a verifier that cannot judge accepts: nothing to fix
        return None
    return None if score.passed else (score.reason or f"the check scored it {score.value:g}")


async def refine(
    call: Callable[[list[dict[str, Any]]], Awaitable[CallResult]],
    messages: list[dict[str, Any]],
    rounds: int,
    verifier: Grader | None,
    item: Item,
    escalate: Callable[[list[dict[str, Any]]], Awaitable[CallResult]] | None = None,
) -> Refined:
    """Answer `messages`, then up to `rounds` repairs while the verifier rejects the answer;
    then, if it still fails and `escalate` is given (the escalation model's call), that."""
    start = time.perf_counter()
    out = Refined(result=CallResult())
    conversation = list(messages)
    last_start = start
    for attempt in range(rounds + 1):
        last_start = time.perf_counter()
        result = await call(conversation)
        out.rounds.append(result)
        if not result.ok:
            out.passed.append(False)
            break
        why = await failure(verifier, result.text, item) if verifier is not None else None
        out.passed.append(why is None)
        if why is None or attempt == rounds:
            break
        conversation += [
            {"role": "assistant", "content": result.text},
            {"role": "user", "content": FAILED.format(why=why)},
        ]
    if escalate is not None and not out.passed[-1]:
        last_start = time.perf_counter()
        result = await escalate(list(messages))
        out.rounds.append(result)
        why = await failure(verifier, result.text, item) if verifier and result.ok else None
        out.passed.append(result.ok and why is None)
        out.escalated = True
    last = out.rounds[-1]
    before_last = (last_start - start) * 1000  # the client's first token comes in the last round
    out.result = replace(
        last,
        prompt_tokens=sum(r.prompt_tokens for r in out.rounds),
        completion_tokens=sum(r.completion_tokens for r in out.rounds),
        cost_usd=sum(r.cost_usd for r in out.rounds),
        latency_ms=(time.perf_counter() - start) * 1000,
        ttft_ms=None if last.ttft_ms is None else before_last + last.ttft_ms,
    )
    return out
