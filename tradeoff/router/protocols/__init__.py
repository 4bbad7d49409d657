"""The client protocols the proxy speaks, one module each (see `base.Protocol`)."""

from __future__ import annotations

from tradeoff.router.protocols.anthropic import AnthropicProtocol
from tradeoff.router.protocols.base import Protocol, StreamTranslator
from tradeoff.router.protocols.chat import ChatProtocol
from tradeoff.router.protocols.passthrough import CompletionsProtocol, EmbeddingsProtocol
from tradeoff.router.protocols.responses import ResponsesProtocol

__all__ = [
    "AnthropicProtocol",
    "ChatProtocol",
    "CompletionsProtocol",
    "EmbeddingsProtocol",
    "Protocol",
    "ResponsesProtocol",
    "StreamTranslator",
]
