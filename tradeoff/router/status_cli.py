"""`tradeoff status`: what is served, live against promised, and each client key's spend.

The router's command, not the loop's: it shows the proxy's client keys (`serve --keys`) beside
each served policy's live state (`policies.loop.loop_status`), and for an explored policy its
candidates and what is proven so far.
"""

from __future__ import annotations

import json
from typing import Any

import click

from tradeoff.evals.cli_options import db_option, json_option
from tradeoff.evals.errors import UsageError


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _band(ci: list[float | None] | None) -> str:
    if not ci or ci[0] is None:
        return "-"
    hi = "?" if ci[1] is None else f"{ci[1] * 100:.1f}"
    return f"{ci[0] * 100:.1f}-{hi}%"


def _seconds(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}s"


def _echo_keys(keys: list[dict[str, Any]]) -> None:
    """Client keys: this period's spend against the budget, and the rate limit."""
    if not keys:
        return
    width = max(len(k["name"]) for k in keys)
    click.echo(f"{'key':{width}}  {'period':6}  {'spent':>12}  {'budget':>10}  {'requests':>8}  "
               f"{'refused':>7}  {'rpm':>11}")  # fmt: skip
    for k in keys:
        budget = "-" if k["budget_usd"] is None else f"${k['budget_usd']:g}"
        rpm = "-" if k["rpm"] is None else f"{k['last_minute']}/{k['rpm']}"
        period = k["budget_period"] if k["budget_usd"] is not None else "-"
        spent = f"${k['spent_usd']:.6f}"
        click.echo(
            f"{k['name']:{width}}  {period:6}  {spent:>12}  {budget:>10}  "
            f"{k['requests']:>8}  {k['refused']:>7}  {rpm:>11}"
        )
    click.echo("")


def register(group: click.Group) -> None:
    @group.command("status")
    @click.argument("names", nargs=-1)
    @db_option
    @json_option
    def status(names: tuple[str, ...], db: str | None, as_json: bool) -> None:
        """Live vs promised for each served policy: state, kept accuracy, savings; and the
        spend of each client key of `serve --keys` in its budget period."""
        from tradeoff.evals.store import open_store
        from tradeoff.policies.loop.status import loop_status
        from tradeoff.router.keys.usage import key_spend

        store = open_store(db)
        doc = loop_status(store, list(names) or None)
        missing = sorted(set(names) - {p["name"] for p in doc["policies"]})
        if missing:
            raise UsageError(
                f"no served policy {', '.join(missing)}; `tradeoff policies` lists stored ones"
            )
        doc["keys"] = key_spend(store)
        if as_json:
            click.echo(json.dumps(doc, indent=2, default=str))
            return
        _echo_keys(doc["keys"])
        if not doc["policies"]:
            click.echo("no policy is serving; fit one (`tradeoff fit`) and serve it")
            return
        for p in doc["policies"]:
            promised = p["promised"]
            click.echo(
                f"{p['name']} v{p['version'] if p['version'] is not None else '-'}: "
                f"{p['state'].upper()}  (requirement: {p['requirement'] or 'none'})"
            )
            click.echo(
                f"  kept accuracy  live {_pct(p['kept_accuracy'])} "
                f"(95% bounds {_band(p['kept_accuracy_ci'])}, {p['shadow_pairs']} pairs)  "
                f"promised {_pct(promised['kept_accuracy'])} "
                f"({_band(promised['kept_accuracy_ci'])})"
            )
            click.echo(
                f"  savings        live {_pct(p['savings'])} over {p['requests']} requests  "
                f"promised {_pct(promised['savings'])}"
            )
            if p["change"]:
                c = p["change"]
                click.echo(
                    f"  violated at pair {c['alarm_at_pair']}; figures cover the "
                    f"{c['pairs_since']} pairs since pair {c['since_pair']}"
                )
            click.echo(f"  shadow spend   ${p['shadow_spend_usd']:.4f}")
            if p.get("reviews"):
                r, wait = p["reviews"], p["reviews"]["time_to_review_s"]
                click.echo(
                    f"  reviews        {r['pending']} pending, {r['done']} done; time to review "
                    f"median {_seconds(wait['median'])}, p95 {_seconds(wait['p95'])}"
                )
            if p.get("explore"):
                _echo_explore(p["explore"])


def _echo_explore(e: dict[str, Any]) -> None:
    """An explored policy's candidates (open or dropped, and why) and what is proven."""
    click.echo(f"  exploring      {e['requests']} requests measured against {e['baseline']}")
    for c in e["candidates"]:
        if c["state"] == "dropped":
            click.echo(
                f"    {c['model']}: dropped after {c['dropped_after']} requests: {c['reason']}"
            )
            continue
        lower = c["kept_accuracy_lower"]
        click.echo(
            f"    {c['model']}: open, {c['requests']} requests, kept {_pct(c['kept_accuracy'])} "
            f"(bound {_pct(lower)}), savings {_pct(c['savings'])}"
            + ("  PROVEN" if c["proven"] else "")
        )
    click.echo(f"  {e['summary']}")
