"""`POST /v1/messages/count_tokens`: Anthropic's token counting, for the model a request routes to.

Claude-based agents call it to manage their context before each turn. The body is a Messages
request without `max_tokens`; the answer is `{"input_tokens": N}` counted by the proxy
(router/request.py `input_tokens`, the same count that checks context windows) for the first
model the request's route would try (a policy's plan, a session's pin, or the model named),
which the `x-tradeoff-model` header names. No upstream is called, so nothing is logged or
priced; errors come in Anthropic's shape, like `/v1/messages`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tradeoff.router.protocols import AnthropicProtocol
from tradeoff.router.request import input_tokens, parse_json_body
from tradeoff.router.routing import await_pin, resolve_route
from tradeoff.router.state import ProxyState

__all__ = ["count_tokens_endpoint"]


def count_tokens_endpoint(
    state: ProxyState, read_json: Callable[[Request], Awaitable[bytes]]
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint; its errors are answered in Anthropic's shape by router/boundary.py."""

    async def endpoint(request: Request) -> Response:
        protocol = AnthropicProtocol()
        state.keys.caller(request.headers, protocol.key_header)
        body: dict[str, Any] = parse_json_body(await read_json(request))
        chat = protocol.parse({**body, "max_tokens": 1}, request.headers)  # none is generated
        await await_pin(state, chat)
        model = resolve_route(state, chat).models[0]
        tokens = input_tokens(chat, state.targets[model].upstream_model)
        return JSONResponse({"input_tokens": tokens}, headers={"x-tradeoff-model": model})

    return endpoint
