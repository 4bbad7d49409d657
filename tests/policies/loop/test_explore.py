"""Cold start without a proxy: `tradeoff explore`, traffic with explored answers, the race, the
status and the refit that promotes what the traffic proves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tradeoff
from tradeoff.evals.adaptive import dropped_models
from tradeoff.evals.errors import UsageError
from tradeoff.evals.store import Store, open_store
from tradeoff.policies.loop.explore import explorations, explore
from tradeoff.policies.loop.explorer import Explorer
from tradeoff.policies.loop.refit import refit_policy
from tradeoff.policies.loop.status import loop_status
from tradeoff.policies.loop.traffic import Answer, GradedPair, traffic_dataset, write_pairs
from tradeoff.policies.versions import history, now, resolve, serving

REQUIRE = "accuracy >= 95% of baseline"
STORED = f"{REQUIRE}; minimize cost"  # as the requirement is stored: its objective spelled out


def explored(tmp_path: Path) -> Store:
    db = tmp_path / "s.duckdb"
    code = tradeoff.main(
        ["explore", "desk", "--baseline", "big", "--candidates", "right,wrong",
         "--require", REQUIRE, "--db", str(db)]
    )  # fmt: skip
    assert code == 0
    return open_store(db)


def shadowed(store: Store, start: int, n: int, models: tuple[str, ...]) -> None:
    """n requests the baseline served, each asked of `models` in shadow: `right` answers as the
    baseline does, `wrong` never does."""
    current = serving(store, "desk")
    assert current is not None
    pairs = []
    for i in range(start, start + n):
        answers = tuple(Answer(m, float(m == "right"), 1e-6, 5.0, (10, 2)) for m in models)
        pairs.append(
            GradedPair(
                request_id=f"req-{i:05d}",
                policy="desk",
                version=current.version,
                epoch=current.epoch,
                policy_id=current.policy_id,
                graded_at=now(),
                grader="agreement",
                routed_model="big",
                baseline_model="big",
                routed_score=1.0,
                baseline_score=1.0,
                is_free=True,
                routed_cost_usd=1e-5,
                baseline_cost_usd=None,
                shadow_cost_usd=1e-6 * len(models),
                task="",
                prompt_sha256=None,
                routed_tokens=(10, 2),
                explored=answers,
            )
        )
    write_pairs(store, pairs)


def test_explore_stores_version_one_the_baseline_alone(tmp_path: Path) -> None:
    store = explored(tmp_path)
    stored = resolve(store, "desk")
    assert stored.version == 1 and stored.epoch is not None  # serving
    assert stored.artifact.policy().models == ("big",)
    assert stored.artifact.baseline == "big" and stored.artifact.requirement == STORED
    with store.connect() as con:
        found = explorations(con)["desk"]
    assert found.candidates == ("right", "wrong") and found.requirement == STORED
    assert [r.source for r in history(store, "desk")] == ["explore"]
    # again: adds a candidate (no new version); another baseline is refused
    assert tradeoff.main(["explore", "desk", "--baseline", "big", "--candidates", "third",
                          "--require", REQUIRE, "--db", str(tmp_path / "s.duckdb")]) == 0  # fmt: skip
    with store.connect() as con:
        assert explorations(con)["desk"].candidates == ("right", "wrong", "third")
    assert resolve(store, "desk").version == 1
    with pytest.raises(UsageError, match="already exists"):
        explore(store, "desk", "other", ["right"], REQUIRE)
    with pytest.raises(UsageError, match="nothing to drop"):
        explore(store, "fresh", "big", ["right"], "p95_latency <= 2s")


def test_the_race_drops_the_wrong_candidate_once_and_the_refit_promotes_the_right(
    tmp_path: Path,
) -> None:
    store = explored(tmp_path)
    with store.connect() as con:
        found = explorations(con)["desk"]
    explorer, other = Explorer(found), Explorer(found)  # two replicas
    shadowed(store, 0, 10, ("right", "wrong"))
    assert explorer.refresh(store) == [] and explorer.open == ("right", "wrong")
    shadowed(store, 10, 30, ("right", "wrong"))
    drops = explorer.refresh(store)
    assert [d.model for d in drops] == ["wrong"] and "dominated by right" in drops[0].reason
    assert explorer.open == ("right",)
    assert other.refresh(store, decide=False) == [] and other.open == ("right",)  # it reads it
    recorded = dropped_models(store, traffic_dataset("desk"))
    assert list(recorded) == ["wrong"] and recorded["wrong"].after_items == drops[0].after_items
    # the budget goes where the decision is open: from here on only `right` is asked
    shadowed(store, 40, 100, ("right",))
    explorer.refresh(store)
    entry = loop_status(store)["policies"][0]["explore"]
    by_model = {c["model"]: c for c in entry["candidates"]}
    assert by_model["wrong"]["state"] == "dropped" and by_model["wrong"]["requests"] == 40
    assert by_model["right"]["proven"] and by_model["right"]["requests"] == 140
    assert by_model["right"]["kept_accuracy_lower"] >= 0.95
    assert by_model["right"]["savings"] == pytest.approx(0.9)
    assert "is proven on 140 of your requests" in entry["summary"]
    assert entry["refit_ready"] and "tradeoff refit --policy desk --promote" in entry["summary"]

    result = refit_policy(store, "desk", promote_it=True, n_trials=5)
    assert result.promoted, result.reason
    assert result.data["models"] == ["big", "right"]  # the dropped candidate is left out
    assert resolve(store, "desk").artifact.policy().models == ("right",)


def test_status_says_what_is_missing(tmp_path: Path) -> None:
    store = explored(tmp_path)
    entry = loop_status(store)["policies"][0]["explore"]
    assert "no graded shadow answers yet" in entry["summary"]
    shadowed(store, 0, 12, ("right",))
    entry = loop_status(store)["policies"][0]["explore"]
    assert entry["summary"].startswith("nothing proven yet: right keeps 100.0% of big on 12")
    assert not entry["refit_ready"]
    assert "more graded requests" in entry["summary"]
    doc = json.loads(json.dumps(entry))  # JSON as `tradeoff status --json` prints it
    assert doc["open"] == ["right", "wrong"]


def test_explore_refuses_models_missing_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "models.yaml"
    entry = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    models = [
        {"model_name": m, "litellm_params": {"model": f"openai/{m}", **entry}}
        for m in ("big", "right")
    ]
    config.write_text(json.dumps({"model_list": models}))  # YAML reads JSON
    code = tradeoff.main(
        ["explore", "desk", "--baseline", "big", "--candidates", "right,ghost",
         "--require", REQUIRE, "--config", str(config), "--db", str(tmp_path / "s.duckdb")]
    )  # fmt: skip
    assert code != 0 and "ghost not in" in capsys.readouterr().err
    assert not (tmp_path / "s.duckdb").exists() or not history(open_store(tmp_path / "s.duckdb"))
