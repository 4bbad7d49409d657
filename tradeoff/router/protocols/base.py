"""The protocol contract: a client API at the proxy's edge, translated to and from the router's
one internal request.

A `Protocol` (one instance per request: it keeps what the answer must echo) does four things:

- `parse(body, headers)`: the client's JSON body to a `ChatRequest` (router/request.py),
  whose `body` is chat completions, or a 400 naming the client's own field;
- `upstream(target, request)`: which API to call on one upstream and with which body: the
  client's own body where the upstream speaks the client's protocol (`Target.speaks`), else the
  chat-completions body;
- `render(reply)`: an upstream's answer, in whichever API it came, as the client's answer;
  `translator()` does the same event by event for streams;
- errors in the client's shape (`error_body`, `stream_error`), and where its key may come
  (`key_header`).

Routing, capability checks, sessions, fallbacks, cascades, the log row and cost live once, in
router/pipeline.py and router/routing.py, and never see which protocol a request came by.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from starlette.responses import Response

from tradeoff.evals.targets import Target
from tradeoff.evals.upstream import Reply
from tradeoff.evals.usage import Usage
from tradeoff.router.errors import ProxyError
from tradeoff.router.protocols.answer import answers
from tradeoff.router.request import ChatRequest


class StreamTranslator(ABC):
    """Turns an upstream's chat-completions stream into the client protocol's events.

    Reading a chat chunk lives here, once (`feed`): its text, refusal and tool-call deltas and
    its finish reason reach the subclass as calls in the order the chunk carries them, so a
    protocol only renders them, and a fix to reading chunks lands in every protocol at once.
    """

    finish_reason: Any = None  # the chat finish reason, once a chunk carried one

    def feed(self, data: Any) -> list[bytes]:
        """The client events for one upstream chunk (its parsed JSON; None for non-JSON)."""
        if not isinstance(data, dict):
            return []
        out = self.start(data.get("model"))
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            delta = delta if isinstance(delta, dict) else {}
            text, refusal = delta.get("content"), delta.get("refusal")
            if isinstance(text, str) and text:
                out += self.text(text)
            if isinstance(refusal, str) and refusal:
                out += self.refusal(refusal)
            for call in delta.get("tool_calls") or []:
                if not isinstance(call, dict):
                    continue
                function = call.get("function")
                function = function if isinstance(function, dict) else {}
                index = call.get("index", 0)
                name, arguments = function.get("name"), function.get("arguments")
                out += self.tool(
                    index if isinstance(index, int) else 0,
                    call.get("id") if isinstance(call.get("id"), str) else None,
                    name if isinstance(name, str) else "",
                    arguments if isinstance(arguments, str) else "",
                )
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    @abstractmethod
    def start(self, model: Any) -> list[bytes]:
        """The opening events, the first time only (`model`: the upstream's, or None)."""

    @abstractmethod
    def text(self, text: str) -> list[bytes]:
        """A piece of the answer's text."""

    @abstractmethod
    def refusal(self, text: str) -> list[bytes]:
        """A piece of a refusal (chat's `refusal` delta)."""

    @abstractmethod
    def tool(self, index: int, call_id: str | None, name: str, arguments: str) -> list[bytes]:
        """A tool-call delta: the call's first opens it (its id and name), each may carry a
        piece of its JSON arguments."""

    @abstractmethod
    def finish(self, usage: Usage | None) -> list[bytes]:
        """The closing events, once the upstream stream ended ([DONE])."""


class Protocol(ABC):
    """One client API. Subclasses set `name` and implement `parse` and `render`."""

    name: ClassVar[str]
    routed: ClassVar[bool] = True  # False: `model` must name a configured model (pass-through)
    key_header: ClassVar[str | None] = None  # a header taking the proxy's key besides Bearer

    @abstractmethod
    def parse(self, body: dict[str, Any], headers: Any) -> ChatRequest:
        """The internal request, or a 400 `ProxyError` naming the client's field."""

    def upstream(self, target: Target, request: ChatRequest) -> tuple[str, dict[str, Any]]:
        """(API, body) to send `target` for this request."""
        if request.native is not None and target.speaks(self.name):
            return self.name, request.native
        return request.api, request.body

    def native_headers(self) -> dict[str, str]:
        """Client headers a native upstream call carries along (Anthropic's beta flags)."""
        return {}

    @abstractmethod
    def render(self, reply: Reply) -> bytes:
        """The client's answer for an upstream reply (`reply.api` says its shape)."""

    def translator(self) -> StreamTranslator | None:
        """The translator for streams from upstreams answering in chat completions; None when
        the stream goes to the client as is."""
        return None

    def error_body(self, error: ProxyError, request_id: str) -> dict[str, Any]:
        return error.body()

    def error_response(self, error: ProxyError, headers: dict[str, str]) -> Response:
        body = self.error_body(error, headers.get("x-tradeoff-request-id", ""))
        return Response(
            json.dumps(body),
            status_code=error.status,
            media_type="application/json",
            headers={**error.headers, **headers},
        )

    def stream_error(self, error: ProxyError) -> bytes:
        """The event that ends a stream broken midway (OpenAI's: a data line with `error`)."""
        return b"data: " + json.dumps(error.body()).encode() + b"\n\n"


def sse(kind: str, data: dict[str, Any]) -> bytes:
    """One named SSE event (the Responses and Messages APIs name theirs)."""
    return b"event: " + kind.encode() + b"\ndata: " + json.dumps(data).encode() + b"\n\n"


def chat_answer(reply: Reply) -> bytes:
    """A reply as a chat completion (its first answer's text, for native replies): what the
    loop's shadow grading reads, whatever protocol the client spoke."""
    if reply.api == "chat":
        return reply.content
    found = answers(reply)
    message = {"role": "assistant", "content": found[0].text if found else None}
    return json.dumps({"choices": [{"index": 0, "message": message}]}).encode()


def chat_event(text: str) -> bytes:
    """A streamed native answer's text as one chat-completion chunk (see `chat_answer`)."""
    delta = {"choices": [{"index": 0, "delta": {"content": text}}]}
    return b"data: " + json.dumps(delta).encode() + b"\n\n"


def generated_text(reply: Reply) -> str:
    """Everything a reply generated (text and tool calls), to count when usage is missing."""
    if reply.api == "completions":
        try:
            choices = json.loads(reply.content).get("choices") or []
            return "".join(str(c.get("text") or "") for c in choices if isinstance(c, dict))
        except (ValueError, AttributeError):
            return ""
    return "".join(answer.generated for answer in answers(reply))
