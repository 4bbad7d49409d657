"""What each event in a policy's history changed, and why, in words."""

from __future__ import annotations

from datetime import datetime

from tradeoff.dashboard.promotions import changes, history_table

V1 = {"family": "task_table", "models": ["large", "small"], "requirement": "accuracy >= 90%",
      "params": {"table": {"math": "large", "code": "small"}},
      "metrics": {"accuracy_vs_baseline": 0.935, "savings_vs_baseline": 0.46}}  # fmt: skip
V2 = {**V1, "models": ["medium", "small"], "params": {"table": {"math": "medium", "code": "small"}},
      "metrics": {"accuracy_vs_baseline": 0.90, "savings_vs_baseline": 0.9}}  # fmt: skip
V3 = {**V1, "family": "learned", "params": {"w": [1, 2]}}
AT = datetime(2026, 1, 1)


def test_changes_name_the_routing_and_the_promise() -> None:
    assert changes(V1, V2) == [
        "adds medium",
        "drops large",
        "math: large → medium",
        "promised share 93.5% → 90.0%",
        "promised savings 46.0% → 90.0%",
    ]
    assert changes(V1, V3) == ["family task_table → learned"]
    assert changes(V1, V1) == ["no change"]


def test_the_table_compares_each_event_with_the_version_serving_before_it() -> None:
    versions = [
        {"version": 1, "artifact": V1, "detail": {}},
        {"version": 2, "artifact": V2, "detail": {"test": {"reason": "it fails"}}},
        {"version": 3, "artifact": V2, "detail": {"test": {"reason": "it passes"}}},
    ]
    events = [
        {"seq": 1, "version": 1, "event": "promoted", "detail": {"by": "fit"}, "happened_at": AT},
        {"seq": 2, "version": 2, "event": "rejected", "detail": {"reason": "too few pairs"},
         "happened_at": AT},
        {"seq": 3, "version": 3, "event": "promoted", "detail": {"by": "refit"}, "happened_at": AT},
        {"seq": 4, "version": 3, "event": "rolled_back", "detail": {"to": 1}, "happened_at": AT},
        {"seq": 5, "version": 1, "event": "promoted", "detail": {"by": "rollback", "from": 3},
         "happened_at": AT},
    ]  # fmt: skip
    table = history_table(versions, events)
    changed = table["What changed (vs the version serving before)"].tolist()
    why = table["Why"].tolist()
    assert changed[0] == "first version"
    assert "math: large → medium" in changed[1] and "math: large → medium" in changed[2]
    assert "math: medium → large" in changed[4]  # the rollback undoes version 3's change
    assert why == [
        "fitted and accepted by tradeoff fit",
        "refit candidate rejected: too few pairs",
        "refit passed its test: it passes",
        "rolled back to version 1",
        "rolled back from version 3",
    ]
