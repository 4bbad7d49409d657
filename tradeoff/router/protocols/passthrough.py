"""POST /v1/embeddings and /v1/completions: passed through to the configured model `model` names.

Not routed: a policy picks among models whose answers can stand in for each other, and neither
embeddings (vectors of different models live in different spaces: mixing them in one index
silently breaks search) nor a raw completion prompt (written for one model's template) have
that property. So `model` must name a configured model, and a failing one is retried (on 429,
5xx, timeouts, like the last model of any plan) but never swapped for another. Keys, the log
row, cost (estimated when the upstream sends no usage), timeouts and the 4xx checks are the
same as on every route. OpenAI-compatible upstreams get the body as is; others go through
litellm (`aembedding`, `atext_completion`).
"""

from __future__ import annotations

from typing import Any

from tradeoff.evals.capabilities import Needs
from tradeoff.evals.targets import Target
from tradeoff.evals.upstream import Reply
from tradeoff.router.errors import bad_request
from tradeoff.router.protocols.base import Protocol
from tradeoff.router.request import TASK_HEADER, ChatRequest, require_model


def _texts(value: Any, name: str) -> str:
    """The text of an `input`/`prompt`: a string, strings, token ids or lists of token ids
    (which carry no text to log or count)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return "\n".join(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return ""
        if all(
            isinstance(v, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in v)
            for v in value
        ):
            return ""
    raise bad_request(
        f"'{name}' must be a string, an array of strings, or token ids", name, "invalid_type"
    )


def _integer(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request(f"'{name}' must be an integer >= 1", name, "invalid_value")
    return value


class PassThrough(Protocol):
    """A request for one configured model, in the upstream API of the same name."""

    routed = False
    field: str  # the body's text field

    def parse(self, body: dict[str, Any], headers: Any) -> ChatRequest:
        model = require_model(body)
        prompt = _texts(body.get(self.field), self.field)
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise bad_request("'stream' must be a boolean", "stream", "invalid_type")
        limit = _integer(body, "max_tokens")
        _integer(body, "n")
        return ChatRequest(
            model=model,
            body=body,
            stream=bool(stream),
            task=headers.get(TASK_HEADER) or None,
            prompt=prompt,
            protocol=self.name,
            api=self.name,
            needs=Needs(output_tokens=limit),
        )

    def upstream(self, target: Target, request: ChatRequest) -> tuple[str, dict[str, Any]]:
        return self.name, request.body

    def render(self, reply: Reply) -> bytes:
        return reply.content


class EmbeddingsProtocol(PassThrough):
    name = "embeddings"
    field = "input"

    def parse(self, body: dict[str, Any], headers: Any) -> ChatRequest:
        request = super().parse(body, headers)
        if request.stream:
            raise bad_request("embeddings cannot be streamed; drop 'stream'", "stream")
        return request


class CompletionsProtocol(PassThrough):
    name = "completions"
    field = "prompt"
