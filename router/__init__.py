"""The OpenAI-compatible proxy that applies a routing policy per request (`tradeoff serve`)."""

from router.app import create_app
from router.settings import Settings

__all__ = ["Settings", "create_app"]
