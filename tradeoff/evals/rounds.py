"""The economics of more tries: pass@round for refine candidates, pass@k for sampled ones.

A refine candidate stops at the first answer its verifier accepts, so an outcome solved (score
>= 0.5) in `rounds` rounds counts as solved at round `rounds` and after. Next to it the cost per
solved answer (every round paid, solved or not, over the answers solved), and the share of
answers a variant with `escalate:` handed to its escalation model (that answer is its last round).

With `--repeats N` every candidate is sampled N times per item, which measures it as best-of-k:
pass@k is the share of items solved by at least one of k samples (k = 1..N), by the unbiased
estimator of Chen et al. (2021) averaged over items, 1 - C(n - c, k) / C(n, k) for an item with
n samples of which c solved; the cost of k samples is k times its mean cost per sample per item
(every round of a refine candidate's sample included).
"""

from __future__ import annotations

from math import comb
from typing import Any

import pandas as pd


def pass_at_round(outcomes: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per refine candidate (outcomes with `rounds`): n, pass@1..max, cost per solved.
    `outcomes` has columns model, score, error, cost_usd, rounds (and escalated)."""
    if "rounds" not in outcomes.columns:
        return []
    refined = outcomes[outcomes["rounds"].notna()]
    rows = []
    for model, group in refined.groupby("model", sort=True):
        solved = (group["score"].fillna(0) >= 0.5) & group["error"].isna()
        rounds = group["rounds"].astype(int)
        n, most = len(group), int(rounds.max())
        cost = float(group["cost_usd"].fillna(0).sum())
        rows.append(
            {
                "model": str(model),
                "n": n,
                "pass_at_round": [
                    float((solved & (rounds <= r)).sum() / n) for r in range(1, most + 1)
                ],
                "mean_rounds": float(rounds.mean()),
                "escalated": float(group["escalated"].notna().mean())
                if "escalated" in group.columns
                else 0.0,
                "cost_per_solved_usd": cost / int(solved.sum()) if solved.any() else None,
            }
        )
    return rows


def render_rounds(rows: list[dict[str, Any]]) -> str:
    """The pass@round table, or "" when no candidate refines."""
    if not rows:
        return ""
    most = max(len(r["pass_at_round"]) for r in rows)
    header = ["model", "n", *(f"pass@{k}" for k in range(1, most + 1)), "rounds", "$/solved"]
    escalating = any(r.get("escalated") for r in rows)
    header += ["escalated"] if escalating else []
    lines = [header]
    for r in rows:
        shares = [f"{v:.1%}" for v in r["pass_at_round"]]
        shares += [shares[-1]] * (most - len(shares))  # solved stays solved
        cost = r["cost_per_solved_usd"]
        lines.append(
            [r["model"], str(r["n"]), *shares, f"{r['mean_rounds']:.2f}",
             "-" if cost is None else f"{cost:.6f}"]
            + ([f"{r.get('escalated', 0.0):.1%}"] if escalating else [])
        )  # fmt: skip
    return "refine candidates: share solved after each round\n" + _table(lines)


def pass_at_k(outcomes: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per candidate sampled more than once per item: items, pass@1..k and the cost of
    k samples per item, for k up to the fewest samples any of its items has. `outcomes` has
    columns model, item_id, score, error, cost_usd."""
    rows = []
    for model, group in outcomes.groupby("model", sort=True):
        solved = (group["score"].fillna(0) >= 0.5) & group["error"].isna()
        per_item = solved.groupby(group["item_id"]).agg(["size", "sum"])
        most = int(per_item["size"].min())
        if most < 2:
            continue
        pairs = list(zip(per_item["size"].astype(int), per_item["sum"].astype(int), strict=True))
        per_sample = float(group["cost_usd"].fillna(0).mean())
        rows.append(
            {
                "model": str(model),
                "items": len(pairs),
                "pass_at_k": [
                    sum(1 - comb(n - c, k) / comb(n, k) for n, c in pairs) / len(pairs)
                    for k in range(1, most + 1)
                ],
                "cost_of_k_usd": [k * per_sample for k in range(1, most + 1)],
            }
        )
    return rows


def render_samples(rows: list[dict[str, Any]]) -> str:
    """The pass@k table, or "" when no candidate was sampled more than once."""
    if not rows:
        return ""
    most = max(len(r["pass_at_k"]) for r in rows)
    header = ["model", "items", *(f"pass@{k}" for k in range(1, most + 1)),
              *(f"${k}x" for k in range(1, most + 1))]  # fmt: skip
    lines = [header]
    for r in rows:
        pad = most - len(r["pass_at_k"])
        lines.append(
            [r["model"], str(r["items"]), *(f"{v:.1%}" for v in r["pass_at_k"]), *["-"] * pad,
             *(f"{v:.6f}" for v in r["cost_of_k_usd"]), *["-"] * pad]
        )  # fmt: skip
    return "best-of-k: share of items solved by any of k samples, and what k samples cost\n" + (
        _table(lines)
    )


def _table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
