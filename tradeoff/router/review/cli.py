"""`tradeoff reviews`: the human review queue, oldest first (what waits, by default)."""

from __future__ import annotations

import json
from datetime import datetime

import click

from tradeoff.evals.cli_options import db_option, json_option


def _age(created: str | None, now: datetime) -> str:
    if not created:
        return "-"
    seconds = max(0.0, (now - datetime.fromisoformat(created)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _one_line(text: str | None, width: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def register(group: click.Group) -> None:
    @group.command("reviews")
    @click.option("--done", is_flag=True, help="List reviewed requests instead of pending ones.")
    @click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
    @db_option
    @json_option
    def reviews(done: bool, limit: int, db: str | None, as_json: bool) -> None:
        """Requests waiting for a human review, oldest first (post verdicts with
        `POST /v1/reviews/{id}` or on the dashboard's Review page)."""
        from tradeoff.evals.store import open_store
        from tradeoff.policies.loop.reviews import pending_reviews
        from tradeoff.policies.versions import now

        found = pending_reviews(open_store(db), limit, "done" if done else "pending")
        if as_json:
            click.echo(json.dumps({"reviews": found}, indent=2, default=str))
            return
        if not found:
            click.echo("no review is done yet" if done else "no review waits")
            return
        at = now()
        click.echo(f"{'review':36}  {'age':>5}  {'policy':12}  {'prompt':32}  draft answer")
        for r in found:
            click.echo(
                f"{r['review_id']:36}  {_age(r['created_at'], at):>5}  "
                f"{_one_line(r['policy'] or '-', 12):12}  {_one_line(r['prompt'], 32):32}  "
                f"{_one_line(r['answer'], 40)}"
            )
