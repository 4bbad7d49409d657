"""Measure models: the store, importers, model registry, graders and the live eval runner."""

from tradeoff.evals.errors import TradeoffError
from tradeoff.evals.registry import ModelEntry, Registry, load_registry
from tradeoff.evals.store import Store, open_store

__all__ = ["ModelEntry", "Registry", "Store", "TradeoffError", "load_registry", "open_store"]
