"""Importers: load outcomes or items measured elsewhere into the store.

`import_file(store, path, dataset, fmt)` reads one file in the `long`, `routerbench` or `items`
format, checks every cell, and writes it in one transaction: a bad row fails the whole file
with `file:line: column: what is wrong` and leaves the store unchanged.
"""

from tradeoff.evals.importers.api import FORMATS, import_file
from tradeoff.evals.importers.write import ImportSummary

__all__ = ["FORMATS", "ImportSummary", "import_file"]
