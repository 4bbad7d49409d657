"""POST /v1/chat/completions: the internal request's own shape; bodies and answers pass as is."""

from __future__ import annotations

from typing import Any

from evals.upstream import Reply
from router.protocols.base import Protocol
from router.validation import ChatRequest, chat_request


class ChatProtocol(Protocol):
    name = "chat"

    def parse(self, body: dict[str, Any], headers: Any) -> ChatRequest:
        return chat_request(body, headers)

    def render(self, reply: Reply) -> bytes:
        return reply.content
