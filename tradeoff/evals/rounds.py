"""pass@round for refine candidates: the share of answers solved after 1, 2, ... rounds.

A refine candidate stops at the first answer its verifier accepts, so an outcome solved (score
>= 0.5) in `rounds` rounds counts as solved at round `rounds` and after. Next to it the cost per
solved answer (every round paid, solved or not, over the answers solved): the economics of more
tries in one table.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def pass_at_round(outcomes: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per refine candidate (outcomes with `rounds`): n, pass@1..max, cost per solved.
    `outcomes` has columns model, score, error, cost_usd, rounds."""
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
    lines = [header]
    for r in rows:
        shares = [f"{v:.1%}" for v in r["pass_at_round"]]
        shares += [shares[-1]] * (most - len(shares))  # solved stays solved
        cost = r["cost_per_solved_usd"]
        lines.append(
            [r["model"], str(r["n"]), *shares, f"{r['mean_rounds']:.2f}",
             "-" if cost is None else f"{cost:.6f}"]
        )  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    body = "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )
    return "refine candidates: share solved after each round\n" + body
