"""The client protocols the proxy speaks, one module each (see `base.Protocol`)."""

from __future__ import annotations

from router.protocols.anthropic import AnthropicProtocol
from router.protocols.base import Protocol, StreamTranslator
from router.protocols.chat import ChatProtocol
from router.protocols.passthrough import CompletionsProtocol, EmbeddingsProtocol
from router.protocols.responses import ResponsesProtocol

__all__ = [
    "AnthropicProtocol",
    "ChatProtocol",
    "CompletionsProtocol",
    "EmbeddingsProtocol",
    "Protocol",
    "ResponsesProtocol",
    "StreamTranslator",
]
