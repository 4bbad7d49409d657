"""What `fit` and `replay` print: the held-out metrics as JSON, a table, and one sentence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tradeoff.evals.errors import RequirementError
from tradeoff.policies.artifact import PolicyArtifact
from tradeoff.policies.replay.metrics import SMALL_SAMPLE
from tradeoff.policies.replay.tasks import task_table
from tradeoff.policies.requirement import parse_requirement

HELD_OUT = "held-out requests"


def sentence(
    metrics: dict[str, Any], baseline: str, scope: str = HELD_OUT, keeps_baseline: bool = False
) -> str:
    """ "keeps 86.3% of gpt-4o's accuracy (95% CI 84.9-87.6%) at 71% less cost, on 2,000
    held-out requests"; `scope` names what the requests are (only items never used to fit the
    policy are "held-out")."""
    kept, ci = metrics.get("accuracy_vs_baseline"), metrics.get("accuracy_vs_baseline_ci")
    savings = metrics.get("savings_vs_baseline")
    n = metrics["n"]
    if keeps_baseline:
        lo, hi = metrics["accuracy_ci"]
        return (
            f"is the baseline itself, {baseline}: no cheaper policy meets the requirement with "
            f"confidence; {baseline} scores {metrics['accuracy']:.1%} accuracy (95% CI "
            f"{lo:.1%}-{hi:.1%}) on {n:,} {scope}"
        )
    if kept is None:
        head = f"scores {metrics['accuracy']:.1%} accuracy ({baseline} scores 0)"
    else:
        band = f" (95% CI {ci[0] * 100:.1f}-{ci[1] * 100:.1f}%)" if ci else ""
        head = f"keeps {kept:.1%} of {baseline}'s accuracy{band}"
    if savings is None:
        tail = "at the same (zero) cost"
    elif savings >= 0.005:
        tail = f"at {savings:.0%} less cost"
    elif savings <= -0.005:
        tail = f"at {-savings:.0%} more cost"
    else:
        tail = "at the same cost"
    return f"{head} {tail}, on {n:,} {scope}"


def bound_words(constraint: str, bound: float, baseline: str) -> str:
    """What a constraint's confidence bound promises, in plain words with the requirement
    beside it: "it keeps at least 95.0% of gpt-4o's accuracy (the requirement: 95%)"."""
    try:
        parsed = parse_requirement(constraint).constraints
    except RequirementError:
        parsed = ()
    if len(parsed) != 1:
        return f"{constraint} holds (bound: {bound:.3g})"
    c = parsed[0]
    side = "at least" if c.lower_bound else "at most"
    if c.relative:
        value, required = f"{bound:.1%} of {baseline}'s", f"{c.value * 100:g}%"
    elif c.metric == "cost":
        value, required = f"${bound:.3g}", f"${c.value:g}"
    elif c.metric == "p95_latency":
        value, required = f"{bound / 1000:.3g}s", f"{c.value / 1000:g}s"
    else:
        value, required = f"{bound:.1%}", f"{c.value * 100:g}%"
    if c.relative and c.metric == "accuracy" and c.lower_bound:
        said = f"it keeps {side} {value} accuracy"
    else:
        name = {"cost": "cost per request", "p95_latency": "p95 latency"}.get(c.metric, c.metric)
        said = f"its {name} is {side} {value}"
    if c.per_task:
        said += " on every task"
    return f"{said} (the requirement: {required})"


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def acceptance_clause(acceptance: dict[str, Any], baseline: str) -> str:
    """Why the policy was accepted, in plain words: how confident the (cross-fitted) training
    items make us that each constraint holds; the held-out items play no part in it. The
    confidence is above the promised 95% when the search tested several candidates, each at a
    stricter level, so that the promise survives the search (see `policies.fit.acceptance`)."""
    bounds = acceptance.get("bounds") or {}
    if not bounds:
        return ""
    confidence = 1 - float(acceptance.get("level") or 0.05)
    items = acceptance.get("items")
    on = f"the {items:,} training items" if isinstance(items, int) else "the training items"
    promised = 1 - float(acceptance.get("alpha") or 0.05)
    parts = [bound_words(c, b, baseline) for c, b in bounds.items()]
    text = f"accepted because, on {on} (cross-fitted), we are {confidence:.1%} confident " + _and(
        parts
    )
    if confidence > promised + 5e-4:
        text += (
            f"; the confidence is above {promised:.0%} because the search tried several candidates"
        )
    return text


def json_metrics(
    policy: str,
    family: str,
    dataset: str,
    split: str,
    metrics: dict[str, Any],
    baseline: str,
    baseline_metrics: dict[str, Any],
    scope: str = HELD_OUT,
    keeps_baseline: bool = False,
    tasks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The documented JSON of fit and replay, held-out metrics first; `tasks` the per-task rows
    (`policies.replay.tasks`) on the same items."""
    return {
        "policy": policy,
        "family": family,
        "dataset": dataset,
        "split": split,
        **metrics,
        "baseline": {
            "model": baseline,
            "accuracy": baseline_metrics["accuracy"],
            "accuracy_ci": baseline_metrics["accuracy_ci"],
            "cost_per_request_usd": baseline_metrics["cost_per_request_usd"],
            "reliability": baseline_metrics["reliability"],
            "p95_latency_ms": baseline_metrics["p95_latency_ms"],
        },
        "tasks": tasks or [],
        "sentence": sentence(metrics, baseline, scope, keeps_baseline),
    }


def small_sample_warning(n: int) -> str:
    if n >= SMALL_SAMPLE:
        return ""
    return (
        f"warning: only {n} held-out items, so the intervals above are wide; hold out more "
        "items (a larger --test-fraction, or more outcomes) for a sharper check"
    )


def model_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """A fixed-width table of accuracy (CI), cost and reliability per row."""
    width = max([len(name) for name, _ in rows] + [8])
    lines = [f"{'':{width}}  {'accuracy':>8}  {'95% CI':>13}  {'$/request':>10}  {'reliab.':>7}"]
    for name, m in rows:
        lo, hi = m["accuracy_ci"]
        lines.append(
            f"{name:{width}}  {m['accuracy']:8.3f}  {f'{lo:.3f}-{hi:.3f}':>13}  "
            f"{m['cost_per_request_usd']:10.3g}  {m['reliability']:7.3f}"
        )
    return "\n".join(lines)


@dataclass
class FitReport:
    """The result of `fit_policy`: the artifact and its held-out (test) evidence."""

    requirement: str
    dataset: str
    family: str
    description: str
    baseline: str
    metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]
    singles: dict[str, dict[str, Any]]
    accuracy_oracle: dict[str, Any]  # per item the best-scoring model: the accuracy ceiling
    # the cheapest routing meeting the accuracy floors knowing every outcome (None: none)
    cheapest_oracle: dict[str, Any] | None
    test_constraints: dict[str, Any]
    skipped: dict[str, str]
    notes: list[str] = field(default_factory=list)
    artifact: PolicyArtifact | None = None
    split: str = ""
    n_fit: int = 0
    candidates_tried: int = 0
    seconds: float = 0.0
    fit_item_ids: list[str] = field(default_factory=list)
    policy_name: str = ""
    keeps_baseline: bool = False
    acceptance: dict[str, Any] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)  # per task, on held-out items

    def sentence(self) -> str:
        """The held-out sentence and, beside its test interval, what acceptance rested on."""
        text = sentence(self.metrics, self.baseline, keeps_baseline=self.keeps_baseline)
        clause = "" if self.keeps_baseline else acceptance_clause(self.acceptance, self.baseline)
        return f"{text}; {clause}" if clause else text

    def held_out(self) -> dict[str, Any]:
        return json_metrics(
            self.policy_name or self.description,
            self.family,
            self.dataset,
            self.split,
            self.metrics,
            self.baseline,
            self.baseline_metrics,
            keeps_baseline=self.keeps_baseline,
            tasks=self.tasks,
        )

    def to_dict(self) -> dict[str, Any]:
        return self.held_out() | {
            "description": self.description,
            "requirement": self.requirement,
            "requirement_on_test": self.test_constraints,
            "acceptance": self.acceptance,
            "singles": self.singles,
            "accuracy_oracle": self.accuracy_oracle,
            "cheapest_oracle": self.cheapest_oracle,
            "skipped_families": self.skipped,
            "notes": self.notes,
            "n_fit": self.n_fit,
            "candidates_tried": self.candidates_tried,
            "fit_seconds": round(self.seconds, 3),
            # The full artifact (a learned router's coefficients run to ~100 kB) is in the
            # policy file and the store; the JSON names it.
            "artifact": {
                "name": self.artifact.name,
                "policy_id": self.artifact.policy_id,
                "family": self.artifact.family,
                "models": self.artifact.models,
            }
            if self.artifact
            else None,
        }

    def _acceptance_lines(self) -> list[str]:
        """What the promise was tested on, and what the configuration search chose."""
        lines = []
        mixes = self.acceptance.get("traffic_mixes") or []
        if mixes:
            lines.append("promise tested on: " + "; ".join(mixes))
        for family, found in (self.acceptance.get("search") or {}).items():
            for s in found:
                if s.get("studies"):
                    chosen = sorted(set(s["per_fold"]), key=s["per_fold"].index)
                    lines.append(
                        f"search {family}: {' | '.join(chosen)} ({s['trials_per_study']} Optuna "
                        f"trials in each of {s['studies']} fold studies)"
                    )
        return lines

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def render(self) -> str:
        rows = [
            (name, m)
            for name, m in sorted(
                self.singles.items(), key=lambda kv: kv[1]["cost_per_request_usd"]
            )
        ]
        rows += [
            (f"policy ({self.family})", self.metrics),  # described in full below the table
            ("accuracy oracle (upper bound)", self.accuracy_oracle),
        ]
        if self.cheapest_oracle is not None:
            rows.append(("cheapest oracle meeting it", self.cheapest_oracle))
        used = ", ".join(
            f"{k} {v:.0%}"
            for k, v in sorted(self.metrics["models_used"].items(), key=lambda kv: -kv[1])
        )
        lines = [
            f"dataset {self.dataset}: fitted and accepted on {self.n_fit:,} training items "
            f"(cross-fitted), tested on {self.metrics['n']:,} held-out items ({self.split})",
            f"requirement: {self.requirement} (baseline {self.baseline})",
            "",
            model_table(rows),
            "",
            f"policy: {self.description}",
            f"routes to: {used}",
        ]
        if self.metrics.get("human_review"):
            lo, hi = self.metrics["human_review_ci"]
            lines.append(
                f"human review: {self.metrics['human_review']:.1%} of requests "
                f"(95% CI {lo:.1%}-{hi:.1%})"
            )
        if len(self.tasks) > 1:
            lines += ["", "per task, on the held-out items (lowest kept share first):"]
            lines += [task_table(self.tasks), ""]
        lines += self._acceptance_lines()
        lines += [f"skipped {family}: {why}" for family, why in self.skipped.items()]
        lines += [f"note: {note}" for note in self.notes]
        if self.keeps_baseline:
            lines.append(
                f"no cheaper policy meets the requirement with confidence: keep {self.baseline}"
            )
        held = [k for k, v in self.test_constraints.items() if not v["holds"]]
        if held:
            lines.append(f"warning: on the test items {', '.join(held)} did not hold")
        warning = small_sample_warning(self.metrics["n"])
        if warning:
            lines.append(warning)
        lines += ["", f"The policy {self.sentence()}."]
        return "\n".join(lines)
