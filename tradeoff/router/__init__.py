"""The OpenAI-compatible proxy that applies a routing policy per request (`tradeoff serve`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeoff.router.settings import Settings

if TYPE_CHECKING:
    from tradeoff.router.app import create_app

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    # create_app pulls in starlette, aiohttp and pyarrow: import it on first use, so that
    # `tradeoff --help` (which imports router.cli, hence this package) stays fast.
    if name == "create_app":
        from tradeoff.router.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
