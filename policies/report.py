"""What `fit` and `replay` print: the held-out metrics as JSON, a table, and one sentence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from policies.artifact import PolicyArtifact


def sentence(metrics: dict[str, Any], baseline: str) -> str:
    """ "keeps 86.3% of gpt-4o's accuracy (95% CI 84.9-87.6%) at 71% less cost, on 2,000
    held-out requests" """
    kept, ci = metrics.get("accuracy_vs_baseline"), metrics.get("accuracy_vs_baseline_ci")
    savings = metrics.get("savings_vs_baseline")
    n = metrics["n"]
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
    return f"{head} {tail}, on {n:,} held-out requests"


def json_metrics(
    policy: str,
    family: str,
    dataset: str,
    split: str,
    metrics: dict[str, Any],
    baseline: str,
    baseline_metrics: dict[str, Any],
) -> dict[str, Any]:
    """The documented JSON of fit and replay, held-out metrics first."""
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
        "sentence": sentence(metrics, baseline),
    }


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
    oracle: dict[str, Any]
    validation_margins: dict[str, float]
    test_constraints: dict[str, Any]
    skipped: dict[str, str]
    notes: list[str] = field(default_factory=list)
    artifact: PolicyArtifact | None = None
    split: str = ""
    n_fit: int = 0
    n_validation: int = 0
    candidates_tried: int = 0
    seconds: float = 0.0
    fit_item_ids: list[str] = field(default_factory=list)
    policy_name: str = ""

    def sentence(self) -> str:
        return sentence(self.metrics, self.baseline)

    def held_out(self) -> dict[str, Any]:
        return json_metrics(
            self.policy_name or self.description,
            self.family,
            self.dataset,
            self.split,
            self.metrics,
            self.baseline,
            self.baseline_metrics,
        )

    def to_dict(self) -> dict[str, Any]:
        return self.held_out() | {
            "description": self.description,
            "requirement": self.requirement,
            "requirement_on_test": self.test_constraints,
            "validation_lower_bound_margins": self.validation_margins,
            "singles": self.singles,
            "oracle": self.oracle,
            "skipped_families": self.skipped,
            "notes": self.notes,
            "n_fit": self.n_fit,
            "n_validation": self.n_validation,
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
            (f"policy: {self.description}", self.metrics),
            ("oracle (upper bound)", self.oracle),
        ]
        used = ", ".join(
            f"{k} {v:.0%}"
            for k, v in sorted(self.metrics["models_used"].items(), key=lambda kv: -kv[1])
        )
        lines = [
            f"dataset {self.dataset}: fitted on {self.n_fit} items, accepted on {self.n_validation} "
            f"validation items, tested on {self.metrics['n']} held-out items ({self.split})",
            f"requirement: {self.requirement} (baseline {self.baseline})",
            "",
            model_table(rows),
            "",
            f"routes to: {used}",
        ]
        lines += [f"skipped {family}: {why}" for family, why in self.skipped.items()]
        lines += [f"note: {note}" for note in self.notes]
        if self.family == "single" and self.metrics["models_used"] == {self.baseline: 1.0}:
            lines.append(
                f"no cheaper policy meets the requirement with confidence: keep {self.baseline}"
            )
        held = [k for k, v in self.test_constraints.items() if not v["holds"]]
        if held:
            lines.append(f"warning: on the test items {', '.join(held)} did not hold")
        lines += ["", f"The policy {self.sentence()}."]
        return "\n".join(lines)
