"""Helpers for the AppTest page tests: what a page drew, as text and specs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from streamlit.testing.v1 import AppTest

OpenPage = Callable[..., AppTest]
PAGES = [
    None,
    "views/models_tasks.py",
    "views/policy_detail.py",
    "views/loop.py",
    "views/traffic.py",
    "views/requests.py",
    "views/eval_browser.py",
]


def charts(at: AppTest) -> list[Any]:
    return list(at.get("vega_lite_chart"))


def chart_specs(at: AppTest) -> list[dict[str, Any]]:
    """Each chart's Vega-Lite spec as sent to the browser."""
    return [json.loads(c.proto.spec) for c in charts(at)]


def chart_bytes(at: AppTest) -> bytes:
    """The first chart as sent to the browser (spec and Arrow data)."""
    return bytes(charts(at)[0].proto.SerializeToString())


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "warning", "error", "success")
        for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def recommendation(at: AppTest) -> str:
    """The recommended option and its sentence."""
    return "\n".join(m.value for m in at.markdown if "Recommended" in m.value or "keeps" in m.value)
