"""POST /v1/chat/completions: the internal request's own shape; bodies and answers pass as is."""

from __future__ import annotations

from typing import Any

from tradeoff.evals.upstream import Reply
from tradeoff.router.protocols.base import Protocol
from tradeoff.router.request import ChatRequest, chat_request


class ChatProtocol(Protocol):
    name = "chat"

    def parse(self, body: dict[str, Any], headers: Any) -> ChatRequest:
        return chat_request(body, headers)

    def render(self, reply: Reply) -> bytes:
        return reply.content
