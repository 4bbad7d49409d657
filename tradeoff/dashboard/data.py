"""How pages reach the store: short read-only connections, cached by the store's version.

The proxy writes the same store while the dashboard is open, so no connection outlives one
query. Results are cached with `st.cache_data` on (store, version, arguments) with a short TTL.
A DuckDB file's version is the modification time of the file and its WAL, so a rerun that
changes nothing costs no query; a PostgreSQL store has no such cheap signal, so its results
live for the TTL (new writes show up within `CACHE_TTL_S`).

The one write is a review verdict (`write`), through the library code the proxy's
`POST /v1/reviews/{id}` runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import streamlit as st

from tradeoff.dashboard import queries
from tradeoff.dashboard.itemsets import ItemSet, options_for
from tradeoff.evals.errors import StoreBusyError, StoreError, TradeoffError
from tradeoff.evals.store import Store, is_url, resolve_db

P = ParamSpec("P")
T = TypeVar("T")
CACHE_TTL_S = 10
# Long enough to ride out a proxy's log flush, short enough to answer while the page waits.
LOCK_TIMEOUT_S = 5.0
DEMO_HINT = (
    "Run `tradeoff demo` to import the bundled data and fit a first policy, "
    "or `tradeoff import` / `tradeoff eval` to add your own."
)


def store_path() -> str:
    """The store the dashboard shows (a file path or a URL): `$TRADEOFF_DB` (set by
    `tradeoff dashboard --db`), else the per-user default."""
    target = resolve_db(None)
    return target if isinstance(target, str) else str(target.resolve())


def store_label() -> str:
    """The store as commands should name it: a path, or a URL without its password."""
    return str(_store(store_path()))


def store_version(target: str) -> tuple[float, float]:
    """Changes whenever DuckDB writes the file or its write-ahead log; constant for a server."""
    if is_url(target):
        return (0.0, 0.0)
    path = Path(target)
    wal = path.with_name(path.name + ".wal")
    return (
        path.stat().st_mtime if path.exists() else 0.0,
        wal.stat().st_mtime if wal.exists() else 0.0,
    )


@st.cache_resource
def _store(target: str) -> Store:
    # Caching the handle saves re-checking migrations on every query (and keeps a PostgreSQL
    # store's few idle connections). The dashboard only reads: it never creates a store.
    return Store(target, timeout_s=LOCK_TIMEOUT_S)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _cached(
    module: str, name: str, path: str, version: tuple[float, float], *args: Any, **kwargs: Any
) -> Any:
    del version  # only part of the cache key
    fn = getattr(importlib.import_module(module), name)
    with _store(path).connect(read_only=True) as con:
        return fn(con, *args, **kwargs)


def query(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a query function (`dashboard.queries`, `dashboard.traffic_queries`) on a short
    read-only connection, cached.

    A locked or unreadable store stops the page with one line saying what to do.
    """
    path = store_path()
    try:
        result: T = _cached(fn.__module__, fn.__name__, path, store_version(path), *args, **kwargs)
    except StoreBusyError as exc:
        _stop(f"{exc}. The page will work again once the writer is done: rerun it (press R).")
    except StoreError as exc:
        _stop(str(exc))
    return result


class _ReadOnly:
    """A store every connection of which is read-only: the dashboard runs library reads
    (`policies.loop`, `policies.versions`) on it, so it never takes a writer's lock."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def connect(self, *, read_only: bool = True, threads: int | None = None) -> Any:
        del read_only
        return self._store.connect(read_only=True, threads=threads)

    def __str__(self) -> str:
        return str(self._store)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _cached_library(
    module: str, name: str, path: str, version: tuple[float, float], *args: Any
) -> Any:
    del version  # only part of the cache key
    fn = getattr(importlib.import_module(module), name)
    return fn(_ReadOnly(_store(path)), *args)


def library(fn: Callable[..., T], *args: Any) -> T:
    """Like `query`, for a library function that takes the store itself (`loop_status(store)`,
    `history(store, name)`): it runs on a read-only view of the store, cached."""
    path = store_path()
    try:
        result: T = _cached_library(fn.__module__, fn.__name__, path, store_version(path), *args)
    except StoreBusyError as exc:
        _stop(f"{exc}. The page will work again once the writer is done: rerun it (press R).")
    except TradeoffError as exc:  # the store's, or a stored policy the library cannot read
        _stop(str(exc))
    return result


def write(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a library function that writes (`submit_verdict(store, ...)`) on the store itself,
    then drop the cached reads (a PostgreSQL store's would otherwise live for the TTL). Raises
    what `fn` raises: the page says what went wrong."""
    result = fn(_store(store_path()), *args, **kwargs)
    st.cache_data.clear()
    return result


def _stop(message: str) -> NoReturn:
    st.error(message)
    st.stop()
    raise AssertionError("unreachable: st.stop() ends the run")


def require_store() -> dict[str, bool]:
    """Stop the page with a helpful message when there is no store; else which of its tables
    have rows."""
    path = store_path()
    try:
        exists = _store(path).exists()
    except StoreError as exc:
        _stop(str(exc))
    if not exists:
        st.info(f"No store at `{_store(path)}`. {DEMO_HINT} Then reopen `tradeoff dashboard`.")
        st.stop()
    return query(queries.presence)


def require_outcomes() -> tuple[dict[str, bool], list[str]]:
    """Like `require_store`, and stop when no outcomes were recorded yet; the datasets."""
    counts = require_store()
    if not counts["outcomes"]:
        st.info(f"The store `{_store(store_path())}` has no eval outcomes yet. {DEMO_HINT}")
        st.stop()
    return counts, query(queries.datasets_with_outcomes)


def choose_dataset(datasets: list[str]) -> str:
    """The dataset selector, shared by every page through session state."""
    current = st.session_state.get("dataset")
    index = datasets.index(current) if current in datasets else 0
    chosen = st.sidebar.selectbox("Dataset", datasets, index=index, key="_dataset_widget")
    st.session_state["dataset"] = chosen
    return str(chosen)


def choose_items(dataset: str) -> ItemSet:
    """The items every figure of the page is measured on (shared between pages): the held-out
    set `tradeoff fit` would use by default, a named split, a set fitted policies were measured
    on, or every item."""
    sizes = query(queries.split_sizes, dataset)
    policy_sets = [s for s in query(queries.fitted_policies, dataset)["items"] if s is not None]
    options = options_for(sizes, policy_sets)
    labels = [o.option() for o in options]
    if "items_next" in st.session_state:  # set by a fit: compare where its policy was measured
        st.session_state["items"] = st.session_state.pop("items_next")
        st.session_state.pop("_items_widget", None)
    current = st.session_state.get("items")
    default = current if current in labels else labels[0]
    chosen = st.sidebar.selectbox(
        "Compare on",
        labels,
        index=labels.index(default),
        key="_items_widget",
        help="Every figure on the page is measured on these items: single models, the oracle, "
        "and the fitted policies whose held-out metrics come from the same items.",
    )
    st.session_state["items"] = chosen
    return options[labels.index(chosen)]


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
