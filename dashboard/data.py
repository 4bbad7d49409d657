"""How pages reach the store: short read-only connections, cached by the file's modification time.

The proxy writes the same file while the dashboard is open, so no connection outlives one query.
Results are cached with `st.cache_data` on (path, mtime of the file and its WAL, arguments) with a
short TTL: a rerun that changes nothing in the store costs no query, and new writes show up at
the next rerun after the TTL.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import streamlit as st

from dashboard import queries
from evals.errors import StoreBusyError, StoreError
from evals.store import Store, resolve_db_path

P = ParamSpec("P")
T = TypeVar("T")
CACHE_TTL_S = 10
# Long enough to ride out a proxy's log flush, short enough to answer while the page waits.
LOCK_TIMEOUT_S = 5.0
DEMO_HINT = (
    "Run `tradeoff demo` to import the bundled data and fit a first policy, "
    "or `tradeoff import` / `tradeoff eval` to add your own."
)


def store_path() -> Path:
    """The store the dashboard shows: `$TRADEOFF_DB` (set by `tradeoff dashboard --db`)."""
    return resolve_db_path(None).resolve()


def store_version(path: Path) -> tuple[float, float]:
    """Changes whenever DuckDB writes the file or its write-ahead log."""
    wal = path.with_name(path.name + ".wal")
    return (
        path.stat().st_mtime if path.exists() else 0.0,
        wal.stat().st_mtime if wal.exists() else 0.0,
    )


@st.cache_resource
def _store(path: str) -> Store:
    # A Store holds no connection; caching it only saves re-checking migrations on every query.
    store = Store(path, timeout_s=LOCK_TIMEOUT_S)
    store.migrate()
    return store


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _cached(
    module: str, name: str, path: str, version: tuple[float, float], *args: Any, **kwargs: Any
) -> Any:
    del version  # only part of the cache key
    fn = getattr(importlib.import_module(module), name)
    with _store(path).connect(read_only=True) as con:
        con.execute("SET enable_progress_bar = false")  # it would print to the server's stdout
        return fn(con, *args, **kwargs)


def query(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a query function (`dashboard.queries`, `dashboard.traffic_queries`) on a short
    read-only connection, cached.

    A locked or unreadable store stops the page with one line saying what to do.
    """
    path = store_path()
    try:
        result: T = _cached(
            fn.__module__, fn.__name__, str(path), store_version(path), *args, **kwargs
        )
    except StoreBusyError as exc:
        _stop(f"{exc}. The page will work again once the writer is done: rerun it (press R).")
    except StoreError as exc:
        _stop(str(exc))
    return result


def _stop(message: str) -> NoReturn:
    st.error(message)
    st.stop()
    raise AssertionError("unreachable: st.stop() ends the run")


def require_store() -> dict[str, int]:
    """Stop the page with a helpful message when there is no store; else its row counts."""
    path = store_path()
    if not path.exists():
        st.info(f"No store at `{path}`. {DEMO_HINT} Then reopen `tradeoff dashboard`.")
        st.stop()
    return query(queries.overview)


def require_outcomes() -> tuple[dict[str, int], list[str]]:
    """Like `require_store`, and stop when no outcomes were recorded yet; the datasets."""
    counts = require_store()
    if not counts["outcomes"]:
        st.info(f"The store `{store_path()}` has no eval outcomes yet. {DEMO_HINT}")
        st.stop()
    return counts, query(queries.datasets_with_outcomes)


def choose_dataset(datasets: list[str]) -> str:
    """The dataset selector, shared by every page through session state."""
    current = st.session_state.get("dataset")
    index = datasets.index(current) if current in datasets else 0
    chosen = st.sidebar.selectbox("Dataset", datasets, index=index, key="_dataset_widget")
    st.session_state["dataset"] = chosen
    return str(chosen)


def choose_split(dataset: str) -> str | None:
    """Held-out data by default: the `test` split when there is one, else every item."""
    names = query(queries.splits, dataset)
    labels = [*names, "all items"]
    current = st.session_state.get("split")
    default = current if current in labels else ("test" if "test" in names else labels[-1])
    chosen = st.sidebar.selectbox("Split", labels, index=labels.index(default), key="_split_widget")
    st.session_state["split"] = chosen
    return None if chosen == "all items" else str(chosen)


def choose_baseline(models: list[str], default: str, *, key: str, where: Any = None) -> str:
    """The baseline selector; the choice is shared between pages through session state.

    Each page passes its own widget `key` (Streamlit drops a widget's state when a page that does
    not render it runs); the choice itself lives in `st.session_state["baseline"]`.
    """
    current = st.session_state.get("baseline")
    chosen_default = current if current in models else default
    target = where if where is not None else st
    chosen = target.selectbox(
        "Baseline (the model you use today)",
        models,
        index=models.index(chosen_default),
        key=key,
    )
    st.session_state["baseline"] = chosen
    return str(chosen)
