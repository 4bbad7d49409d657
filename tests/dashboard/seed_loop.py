"""The seeded store's traffic: a proxy's request log and the loop's history of one policy.

Requests (one a minute over the last `n` minutes): most routed by the policy `table-math-large`
with their plan's reason, a share passed through to a named model (no policy, no baseline price),
client errors (400, 499) and upstream failures (502), fallbacks and estimated costs.

The loop, on the same clock: version 1 promoted by the fit before the first request, graded
shadow pairs, a refit candidate (version 2) rejected, a refit (version 3) promoted, more pairs;
a refit's working dataset `refit-<name>` holds a few outcomes (pages must leave it out).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Con = Any
REQUESTING_POLICY = "table-math-large"
PASS_THROUGH_MODEL = "medium"


def insert_requests(con: Con, n: int) -> None:
    """The request log (see the module docstring); `r` counts minutes from the oldest."""
    con.execute(
        f"""
        INSERT INTO requests (request_id, created_at, policy, requested_model, model, task,
                              stream, attempts, fallbacks, status, error, prompt_tokens,
                              completion_tokens, cost_usd, baseline_cost_usd, latency_ms,
                              cost_estimated, route_reason)
        WITH log AS (
            SELECT r, r % 5 = 1 AS passed, r % 50 = 25 AS bad, r % 97 = 3 AS gone,
                   r % 50 = 0 AS failed, CASE WHEN r % 2 = 0 THEN 'math' ELSE 'code' END AS task,
                   now()::TIMESTAMP - to_minutes({n} - r) AS stamp
            FROM range({n}) t(r)
        )
        SELECT 'req-' || lpad(r::VARCHAR, 7, '0'), stamp,
               CASE WHEN passed THEN NULL ELSE '{REQUESTING_POLICY}' END,
               CASE WHEN passed THEN '{PASS_THROUGH_MODEL}' ELSE '{REQUESTING_POLICY}' END,
               CASE WHEN bad THEN NULL WHEN passed THEN '{PASS_THROUGH_MODEL}'
                    WHEN task = 'math' THEN 'large' ELSE 'small' END,
               task, r % 5 = 0,
               CASE WHEN bad THEN 0 ELSE 1 + (r % 20 = 0)::INT END, (r % 20 = 0)::INT,
               CASE WHEN bad THEN 400 WHEN gone THEN 499 WHEN failed THEN 502 ELSE 200 END,
               CASE WHEN bad THEN 'messages: field required' WHEN gone THEN 'client closed'
                    WHEN failed THEN 'upstream 502' END,
               CASE WHEN bad THEN NULL ELSE 40 END, CASE WHEN bad THEN NULL ELSE 10 END,
               CASE WHEN bad OR failed THEN NULL WHEN passed THEN 0.002
                    WHEN task = 'math' THEN 0.02 ELSE 0.0002 END,
               CASE WHEN bad OR failed OR passed THEN NULL ELSE 0.02 END,
               CASE WHEN bad THEN 2 WHEN task = 'math' THEN 1500 ELSE 300 END + (r % 7) * 10,
               r % 13 = 0,
               CASE WHEN bad THEN NULL
                    WHEN passed THEN 'pass-through: the client named this model'
                    ELSE 'task ' || task || ' -> ' || CASE WHEN task = 'math' THEN 'large'
                                                          ELSE 'small' END END
        FROM log
        """
    )


REVIEWS = [  # (request number, status, prompt, draft answer): some of the policy's requests
    (480, "done", "What is 17 * 23?", "391"),
    (487, "pending", "Integrate x^2 from 0 to 3.", "9"),
    (490, "pending", "Solve for x: 3x + 7 = 22. " * 12, "x = 5, since 3x = 15 and so x = 15 / 3."),
    (494, "pending", "Is 221 a prime number?", "Yes, 221 is prime."),
]


def insert_reviews(con: Con) -> None:
    """A human review queue over the policy's requests: one reviewed, three waiting."""
    for r, status, prompt, answer in REVIEWS:
        request_id = f"req-{r:07d}"
        con.execute(
            "INSERT INTO reviews (review_id, request_id, policy, baseline, reviewer, "
            "draft_model, task, prompt, answer, review_cost_usd, draft_cost_usd, created_at, "
            "status, score, reviewed_at) "
            "SELECT ?, request_id, policy, 'large', 'reviewer', model, task, ?, ?, 0.5, "
            "cost_usd, created_at, ?, CASE WHEN ? = 'done' THEN 1.0 END, "
            "CASE WHEN ? = 'done' THEN created_at + INTERVAL 5 MINUTE END "
            "FROM requests WHERE request_id = ?",
            [f"rev-seed-{r}", f"user: {prompt}", answer, status, status, status, request_id],
        )


def _at(minutes_ago: int) -> str:
    return f"now()::TIMESTAMP - to_minutes({minutes_ago})"


def insert_loop(con: Con, name: str, n: int, make_policy: Callable[..., str]) -> None:
    """Versions, events and graded pairs of `name` (see the module docstring)."""
    start = n + 60
    con.execute(f"UPDATE policy_versions SET created_at = {_at(start)} WHERE name = ?", [name])
    con.execute(f"UPDATE policy_events SET happened_at = {_at(start)} WHERE name = ?", [name])
    refit = f"refit-{name}"
    con.execute(
        "INSERT INTO items (dataset, item_id, task, split) SELECT ?, item_id, task, split "
        "FROM items WHERE dataset = 'synthetic' ORDER BY item_id LIMIT 20",
        [refit],
    )
    con.execute(
        "INSERT INTO outcomes (dataset, item_id, model, sample, score, cost_usd) "
        "SELECT ?, o.item_id, o.model, o.sample, o.score, o.cost_usd FROM outcomes o "
        "JOIN items i ON i.dataset = ? AND i.item_id = o.item_id WHERE o.dataset = 'synthetic'",
        [refit, refit],
    )
    rejected_at, promoted_at = n // 2, n // 3
    row = con.execute(
        "SELECT requirement FROM policies WHERE policy_id = ?", [f"pol-{name}"]
    ).fetchone()
    requirement = str(row[0]).split(";")[0]  # a refit keeps the requirement it refits for
    candidates = [
        (2, {"math": "medium", "code": "small"}, rejected_at, False),
        (3, {"math": "large", "code": "medium"}, promoted_at, True),
    ]
    for version, table, minutes_ago, passed in candidates:
        policy_id = make_policy(
            con,
            name,
            table,
            policy_id=f"pol-{name}-v{version}",
            dataset=refit,
            requirement=requirement,
        )
        reason = (
            "on 60 held-out traffic pairs it keeps 97.1% of the baseline's accuracy; every "
            "constraint holds at its 95% lower bound"
            if passed
            else f"on 60 held-out traffic pairs it does not meet {requirement} "
            "(lower-bound margin -0.0412) with 95% confidence"
        )
        detail = {
            "refit_of": 1,
            "data": {"dataset": refit, "traffic_pairs": 150},
            "test": {"passed": passed, "n": 60, "reason": reason},
        }
        con.execute(
            "INSERT INTO policy_versions (name, version, policy_id, source, parent_version, "
            f"detail, created_at) VALUES (?, ?, ?, 'refit', 1, ?, {_at(minutes_ago)})",
            [name, version, policy_id, json.dumps(detail)],
        )
        event = "promoted" if passed else "rejected"
        what = {"by": "refit", "test": detail["test"]} if passed else {"reason": reason}
        con.execute(
            "INSERT INTO policy_events (name, seq, version, event, detail, happened_at) "
            f"VALUES (?, ?, ?, ?, ?, {_at(minutes_ago)})",
            [name, version, version, event, json.dumps(what)],
        )
    # Graded pairs: epoch 1 (version 1) until the promotion, epoch 3 (version 3) after it.
    for epoch, version, first, last in ((1, 1, n, promoted_at), (3, 3, promoted_at, 0)):
        con.execute(
            f"""
            INSERT INTO loop_pairs (request_id, policy, version, epoch, policy_id, graded_at,
                                    grader, routed_model, baseline_model, routed_score,
                                    baseline_score, is_free, routed_cost_usd, baseline_cost_usd,
                                    shadow_cost_usd, task)
            SELECT 'pair-' || {epoch} || '-' || lpad(r::VARCHAR, 6, '0'), ?, {version}, {epoch},
                   ?, now()::TIMESTAMP - to_seconds(({first} - ({first} - {last}) * r / 150.0)
                                                    * 60),
                   'agreement', CASE WHEN r % 2 = 0 THEN 'large' ELSE 'small' END, 'large',
                   CASE WHEN r % 2 = 0 OR r % 29 <> 7 THEN 1.0 ELSE 0.0 END, 1.0, r % 2 = 0,
                   CASE WHEN r % 2 = 0 THEN 0.02 ELSE 0.0002 END, 0.02,
                   CASE WHEN r % 2 = 0 THEN 0.0 ELSE 0.02 END,
                   CASE WHEN r % 2 = 0 THEN 'math' ELSE 'code' END
            FROM range(150) t(r)
            """,
            [name, f"pol-{name}" if version == 1 else f"pol-{name}-v{version}"],
        )
