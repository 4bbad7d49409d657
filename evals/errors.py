"""The error hierarchy. Library code raises these; the CLI prints one line, the proxy answers JSON.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations


class TradeoffError(Exception):
    """Base class for errors a user can fix. `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(TradeoffError):
    """A command was called wrongly (bad option value, missing file, unknown name)."""

    exit_code = 2


class NotBuiltError(UsageError):
    """A command that exists in the CLI but is not implemented yet."""


class ConfigError(TradeoffError):
    """models.yaml or an environment variable is missing or wrong."""


class ImportFormatError(TradeoffError):
    """An input file is malformed; the message is `file:line: column: what is wrong`."""

    def __init__(self, path: str, line: int | None, column: str | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        what = f"{column}: {problem}" if column else problem
        super().__init__(f"{where}: {what}")
        self.path, self.line, self.column, self.problem = path, line, column, problem


class StoreError(TradeoffError):
    """The store cannot be opened or is in an unexpected state."""


class StoreNotFoundError(StoreError):
    """A command that only reads found no store where it looked (reads never create one)."""

    exit_code = 2


class StoreBusyError(StoreError):
    """Another process held the store's lock for longer than the timeout."""
