"""Measure models: the store, importers, model registry, graders and the live eval runner."""

from evals.errors import TradeoffError
from evals.registry import ModelEntry, Registry, load_registry
from evals.store import Store, open_store

__all__ = ["ModelEntry", "Registry", "Store", "TradeoffError", "load_registry", "open_store"]
