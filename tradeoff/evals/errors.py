"""The error hierarchy. Library code raises these; the CLI prints one line, the proxy answers JSON.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations

import os
from pathlib import Path


class TradeoffError(Exception):
    """Base class for errors a user can fix. `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(TradeoffError):
    """A command was called wrongly (bad option value, missing file, unknown name)."""

    exit_code = 2


class MissingFileError(UsageError):
    """An input file (data, models.yaml, a policy, a key file) does not exist.

    The one rule for every command: a missing input is a usage mistake, exit 2. Raise it
    through `require_file`, which also turns a folder given as a file into the same mistake.
    """


def require_file(path: str | os.PathLike[str], what: str, fix: str) -> Path:
    """`path` as a Path if it is an existing file; else MissingFileError: "WHAT PATH not found;
    FIX" (or "... is a folder, not a file")."""
    p = Path(path)
    if p.is_dir():
        raise MissingFileError(f"{what} {p} is a folder, not a file; {fix}")
    if not p.is_file():
        raise MissingFileError(f"{what} {p} not found; {fix}")
    return p


class RequirementError(UsageError):
    """A requirement statement does not parse; the message points at the bad word."""


class NotBuiltError(UsageError):
    """A command that exists in the CLI but is not implemented yet."""


class ConfigError(TradeoffError):
    """models.yaml or an environment variable is missing or wrong."""


class UnknownModelError(ConfigError):
    """A model name that models.yaml does not configure: a name that does not exist, so a
    usage mistake (exit 2), like a missing file."""

    exit_code = 2


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
