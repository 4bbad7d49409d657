"""Refit reads the regime the monitor accepts: never the pairs from before a detected change."""

from __future__ import annotations

from pathlib import Path

from tradeoff.evals.store import Store, open_store
from tradeoff.policies.artifact import PolicyArtifact, store_artifact
from tradeoff.policies.families.base import create_policy
from tradeoff.policies.loop.refit import refit_policy
from tradeoff.policies.loop.traffic import GradedPair, write_pairs
from tradeoff.policies.versions import append_event, now, serving


def stored(path: Path) -> Store:
    store = open_store(path)
    artifact = PolicyArtifact.from_policy(
        "desk",
        create_policy("single", {"model": "cheap"}),
        requirement="accuracy >= 95% of baseline",
        baseline="strong",
    )
    store_artifact(store, artifact)
    return store


def pairs(store: Store, agree: list[float], offset: int = 0) -> None:
    current = serving(store, "desk")
    assert current is not None
    write_pairs(
        store,
        [
            GradedPair(
                request_id=f"req-{offset + i:05d}",
                policy="desk",
                version=current.version,
                epoch=current.epoch,
                policy_id=current.policy_id,
                graded_at=now(),
                grader="agreement",
                routed_model="cheap",
                baseline_model="strong",
                routed_score=r,
                baseline_score=1.0,
                is_free=False,
                routed_cost_usd=1e-6,
                baseline_cost_usd=1e-5,
                shadow_cost_usd=1e-5,
                task="",
                prompt_sha256=None,
            )
            for i, r in enumerate(agree)
        ],
    )


def test_a_refit_on_the_changed_regime_routes_away_from_the_broken_model(tmp_path: Path) -> None:
    store = stored(tmp_path / "s.duckdb")
    pairs(store, [1.0] * 100)
    pairs(store, [0.0] * 80, offset=100)  # cheap broke: the monitor finds the change
    result = refit_policy(store, "desk", promote_it=True, n_trials=10)
    assert result.data["since_pair"] > 0 and result.data["traffic_pairs"] < 180
    assert result.promoted, result.reason
    assert result.fit["description"] == "single strong"
    assert serving(store, "desk").version == 2  # type: ignore[union-attr]


def test_a_proxys_alarm_outranks_pairs_not_written_yet(tmp_path: Path) -> None:
    store = stored(tmp_path / "s.duckdb")
    pairs(store, [1.0] * 100)  # the store has only the good pairs so far
    with store.transaction() as con:
        append_event(con, "desk", 1, "violated", {"since_pair": 100})
    result = refit_policy(store, "desk", promote_it=True, n_trials=10)
    assert not result.promoted and "no graded traffic" in result.reason
    assert serving(store, "desk").version == 1  # type: ignore[union-attr]
