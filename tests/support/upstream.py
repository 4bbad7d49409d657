"""A small OpenAI-compatible server that stands in for LLM providers in tests and benchmarks.

Everything on our side of the wire is real; this server scripts the other side: answers per
model or prompt, latency, HTTP errors (with Retry-After), hangs, SSE streams (optionally cut
midway), tool calls, responses without `usage` or with cached and reasoning tokens. Besides chat
completions it speaks legacy completions and embeddings, and, as a provider that has them
natively would, OpenAI's Responses API (`/v1/responses`) and Anthropic's Messages API
(`/v1/messages`, tests.support.native).

    with Upstream(rules=[Rule(model="m1", fail_times=2, status=429)]) as up:
        client = OpenAI(base_url=up.url, api_key="x")

Rules are tried in order; the first whose `model` and `contains` match the request applies;
`set_rule` changes a model's answers while the server runs.
Run it alone for benchmarks: `python -m tests.support.upstream --port 9000 --delay-ms 20`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.native import (
    message_events,
    message_object,
    messages_prompt,
    response_events,
    response_object,
    responses_prompt,
)


@dataclass
class Rule:
    """How to answer the requests it matches. All fields optional."""

    model: str | None = None  # match on the request's `model`
    contains: str | None = None  # match on a substring of the last user message
    reply: str | Callable[[dict[str, Any]], str] | None = None  # default: "echo: <prompt>"
    delay_s: float = 0.0  # before the response / the first streamed byte
    chunk_delay_s: float = 0.0  # between streamed chunks
    status: int | None = None  # answer this HTTP error (forever, or `fail_times` times)
    fail_times: int | None = None  # fail only the first N matching calls, then answer
    retry_after: float | None = None  # Retry-After header on errors
    hang: bool = False  # never answer (the client's timeout must fire)
    cut_stream_after: int | None = None  # streaming: drop the connection after N chunks
    usage: bool = True  # include `usage`
    tool_call: dict[str, Any] | None = None  # answer with this tool call {name, arguments}
    refusal: str | None = None  # chat: refuse (`content: null, refusal: ...`) with this text
    # The reply once the conversation holds a tool's result (a function: of the request body).
    after_tool: str | Callable[[dict[str, Any]], str] | None = None
    prompt_tokens: int | None = None  # default: words in the prompt
    cached_tokens: int = 0  # of the prompt tokens, reported as read from a prompt cache
    reasoning_tokens: int = 0  # reported as spent reasoning (added to the completion tokens)
    # /v1/completions only: extra delay proportional to the tokens served, like a GPU's
    # prefill and decode time (for cost calibration tests).
    prefill_s_per_token: float = 0.0
    decode_s_per_token: float = 0.0
    calls: int = field(default=0, init=False)

    def matches(self, body: dict[str, Any], prompt: str) -> bool:
        if self.model is not None and body.get("model") != self.model:
            return False
        return self.contains is None or self.contains in prompt


def has_tool_result(body: dict[str, Any]) -> bool:
    """Whether a chat, Responses or Messages body carries a tool's result."""
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        if message.get("role") == "tool" or any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks
        ):
            return True
    given = body.get("input")
    return isinstance(given, list) and any(
        isinstance(i, dict) and i.get("type") == "function_call_output" for i in given
    )


def tool_result_text(body: dict[str, Any]) -> str:
    """The last tool result's text in a chat body ("" if none)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "tool":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


class Upstream:
    """The server: start it (context manager), point clients at `.url`, inspect `.requests`."""

    def __init__(
        self,
        rules: list[Rule] | None = None,
        *,
        host: str = "127.0.0.1",
        served_models: list[str] | None = None,
        max_model_len: int | None = None,
        ready_after_s: float = 0.0,
    ) -> None:
        self.rules = list(rules or [])
        self.host = host
        # Like vLLM: /v1/models lists exactly these (with max_model_len when set), and
        # /health and /v1/models answer 503 until `ready_after_s` after start.
        self.served_models = served_models
        self.max_model_len = max_model_len
        self.ready_after_s = ready_after_s
        self._started_at = 0.0
        # Tokens served, by model, as vLLM's /metrics counters report them.
        self.prompt_tokens_total: Counter[str] = Counter()
        self.generation_tokens_total: Counter[str] = Counter()
        self.completion_requests: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        # Bodies sent to the other APIs, by API: "responses", "messages", "embeddings".
        self.native_requests: dict[str, list[dict[str, Any]]] = {
            "responses": [], "messages": [], "embeddings": []
        }  # fmt: skip
        self.headers: list[dict[str, str]] = []
        self.model_counts: Counter[str] = Counter()
        self.disconnects = 0
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The OpenAI base URL (with /v1)."""
        return f"http://{self.host}:{self.port}/v1"

    # -- the ASGI app ---------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/health", self._health, methods=["GET"]),
                Route("/v1/completions", self._completions, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/metrics", self._metrics, methods=["GET"]),
            ]
        )

    def _ready(self) -> bool:
        return time.monotonic() - self._started_at >= self.ready_after_s

    async def _health(self, request: Request) -> Response:
        if not self._ready():
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def _models(self, request: Request) -> Response:
        if not self._ready():
            return JSONResponse({"error": {"message": "starting"}}, status_code=503)
        if self.served_models is not None:
            names = list(self.served_models)
        else:
            names = sorted({r.model for r in self.rules if r.model} | {"default"})
        cards: list[dict[str, Any]] = [{"id": n, "object": "model"} for n in names]
        if self.max_model_len is not None:
            for card in cards:
                card["max_model_len"] = self.max_model_len
        return JSONResponse({"object": "list", "data": cards})

    async def _metrics(self, request: Request) -> Response:
        """vLLM's token counters in Prometheus text format."""
        lines = [
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
            "# TYPE vllm:prompt_tokens_total counter",
        ]
        with self._lock:
            prompt = dict(self.prompt_tokens_total)
            generation = dict(self.generation_tokens_total)
        lines += [
            f'vllm:prompt_tokens_total{{model_name="{m}"}} {float(v)}' for m, v in prompt.items()
        ]
        lines += [
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
            "# TYPE vllm:generation_tokens_total counter",
        ]
        lines += [
            f'vllm:generation_tokens_total{{model_name="{m}"}} {float(v)}'
            for m, v in generation.items()
        ]
        return Response("\n".join(lines) + "\n", media_type="text/plain")

    async def _completions(self, request: Request) -> Response:
        """The legacy completions API, as vLLM serves it: a prompt string or token ids,
        `max_tokens`, and vLLM's `ignore_eos` (then exactly `max_tokens` are generated)."""
        body = await request.json()
        prompt = body.get("prompt")
        if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
            prompt_tokens, text = len(prompt), " ".join(map(str, prompt))
        else:
            text = str(prompt or "")
            prompt_tokens = max(1, len(text.split()))
        with self._lock:
            self.completion_requests.append(body)
            self.model_counts[str(body.get("model"))] += 1
            rule = self._rule_for(body, text)
            rule.calls += 1
            call_number = rule.calls
        failing = rule.status is not None and (
            rule.fail_times is None or call_number <= rule.fail_times
        )
        if failing:
            error = {"message": f"scripted failure {rule.status}", "type": "upstream_error"}
            return JSONResponse({"error": error}, status_code=rule.status or 500)
        reply = rule.reply(body) if callable(rule.reply) else rule.reply
        reply = "echo" if reply is None else reply
        max_tokens = int(body.get("max_tokens") or 16)
        generated = max_tokens if body.get("ignore_eos") else min(max_tokens, len(reply.split()))
        prompt_tokens = rule.prompt_tokens or prompt_tokens
        delay = (
            rule.delay_s
            + rule.prefill_s_per_token * prompt_tokens
            + rule.decode_s_per_token * generated
        )
        if delay:
            await asyncio.sleep(delay)
        model = str(body.get("model"))
        with self._lock:
            self.prompt_tokens_total[model] += prompt_tokens
            self.generation_tokens_total[model] += generated
        payload: dict[str, Any] = {
            "id": f"cmpl-{uuid.uuid4().hex[:12]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "text": reply, "finish_reason": "length"}],
        }
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": prompt_tokens + generated,
        }
        if rule.usage:
            payload["usage"] = usage
        if body.get("stream"):
            return StreamingResponse(
                self._completion_stream(payload, reply, usage, rule, body),
                media_type="text/event-stream",
            )
        return JSONResponse(payload)

    @staticmethod
    async def _completion_stream(
        payload: dict[str, Any], reply: str, usage: dict[str, int], rule: Rule, body: dict
    ) -> AsyncIterator[bytes]:
        for word in reply.split(" "):
            chunk = {
                **payload,
                "choices": [{"index": 0, "text": word + " ", "finish_reason": None}],
            }
            chunk.pop("usage", None)
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        if rule.usage and (body.get("stream_options") or {}).get("include_usage"):
            yield f"data: {json.dumps({**payload, 'choices': [], 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    def set_rule(self, rule: Rule) -> None:
        """Script `rule.model`'s answers anew, mid-test: the rule replaces that model's rules
        and the next request sees it."""
        with self._lock:
            self.rules = [rule] + [r for r in self.rules if r.model != rule.model]

    def _rule_for(self, body: dict[str, Any], prompt: str) -> Rule:
        for rule in self.rules:
            if rule.matches(body, prompt):
                return rule
        return Rule()

    async def _prepare(
        self, request: Request, prompt_of: Callable[[dict[str, Any]], str], log: list[dict]
    ) -> tuple[dict[str, Any], Rule, str, dict[str, int], dict[str, Any] | None] | Response:
        """Read a request, match its rule, wait, fail or hang as scripted; else the body, the
        rule, the reply text, the usage (prompt, completion, cached, reasoning tokens) and the
        tool call to answer with (None: answer with the text)."""
        body = await request.json()
        prompt = prompt_of(body)
        with self._lock:
            log.append(body)
            self.headers.append(dict(request.headers))
            self.model_counts[str(body.get("model"))] += 1
            rule = self._rule_for(body, prompt)
            rule.calls += 1
            call_number = rule.calls
        if rule.delay_s:
            await asyncio.sleep(rule.delay_s)
        if rule.hang:
            await asyncio.sleep(3600)
        failing = rule.status is not None and (
            rule.fail_times is None or call_number <= rule.fail_times
        )
        if failing:
            assert rule.status is not None
            headers = {"retry-after": str(rule.retry_after)} if rule.retry_after is not None else {}
            error = {"message": f"scripted failure {rule.status}", "type": "upstream_error"}
            return JSONResponse({"error": error}, status_code=rule.status, headers=headers)
        reply = rule.reply(body) if callable(rule.reply) else rule.reply
        if reply is None:
            reply = f"echo: {prompt}"
        tool = rule.tool_call
        if rule.after_tool is not None and has_tool_result(body):
            after = rule.after_tool
            reply, tool = (after(body) if callable(after) else after), None
        usage = {
            "prompt": rule.prompt_tokens or max(1, len(prompt.split())),
            "completion": max(1, len(reply.split())) + rule.reasoning_tokens,
            "cached": rule.cached_tokens,
            "reasoning": rule.reasoning_tokens,
        }
        with self._lock:
            self.prompt_tokens_total[str(body.get("model"))] += usage["prompt"]
            self.generation_tokens_total[str(body.get("model"))] += usage["completion"]
        return body, rule, reply, usage, tool

    async def _chat(self, request: Request) -> Response:
        prepared = await self._prepare(request, last_user_text, self.requests)
        if isinstance(prepared, Response):
            return prepared
        body, rule, reply, counts, tool = prepared
        usage: dict[str, Any] = {
            "prompt_tokens": counts["prompt"],
            "completion_tokens": counts["completion"],
            "total_tokens": counts["prompt"] + counts["completion"],
        }
        if counts["cached"]:
            usage["prompt_tokens_details"] = {"cached_tokens": counts["cached"]}
        if counts["reasoning"]:
            usage["completion_tokens_details"] = {"reasoning_tokens": counts["reasoning"]}
        if body.get("stream"):
            return StreamingResponse(
                self._stream(body, tool, reply, usage, rule), media_type="text/event-stream"
            )
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        finish = "stop"
        if tool:
            message = {"role": "assistant", "content": None, "tool_calls": [self._tool(tool)]}
            finish = "tool_calls"
        elif rule.refusal is not None:
            message = {"role": "assistant", "content": None, "refusal": rule.refusal}
        n = int(body.get("n") or 1)
        payload: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {"index": i, "message": message, "finish_reason": finish} for i in range(n)
            ],
        }
        if rule.usage:
            payload["usage"] = usage
        return JSONResponse(payload)

    async def _responses(self, request: Request) -> Response:
        """OpenAI's Responses API, as a provider that has it answers."""
        prepared = await self._prepare(request, responses_prompt, self.native_requests["responses"])
        if isinstance(prepared, Response):
            return prepared
        body, _, reply, usage, tool = prepared
        response = response_object(body, reply, tool, usage)
        if body.get("stream"):
            return StreamingResponse(
                _each(response_events(response)), media_type="text/event-stream"
            )
        return JSONResponse(response)

    async def _messages(self, request: Request) -> Response:
        """Anthropic's Messages API, as Anthropic answers (errors in OpenAI's shape suffice:
        the proxy reads only the message)."""
        prepared = await self._prepare(request, messages_prompt, self.native_requests["messages"])
        if isinstance(prepared, Response):
            return prepared
        body, _, reply, usage, tool = prepared
        message = message_object(body, reply, tool, usage)
        if body.get("stream"):
            return StreamingResponse(_each(message_events(message)), media_type="text/event-stream")
        return JSONResponse(message)

    async def _embeddings(self, request: Request) -> Response:
        """Embeddings: a deterministic 4-dimensional vector per input (from its text)."""

        def text_of(body: dict[str, Any]) -> str:
            given = body.get("input")
            return " ".join(map(str, given)) if isinstance(given, list) else str(given or "")

        prepared = await self._prepare(request, text_of, self.native_requests["embeddings"])
        if isinstance(prepared, Response):
            return prepared
        body, rule, _, usage, _ = prepared
        given = body.get("input")
        inputs = given if isinstance(given, list) else [given]
        data: list[dict[str, Any]] = [
            {"object": "embedding", "index": i,
             "embedding": [float(len(str(x))), float(i), 0.5, -0.5]}
            for i, x in enumerate(inputs)
        ]  # fmt: skip
        payload: dict[str, Any] = {"object": "list", "data": data, "model": body.get("model")}
        if rule.usage:
            payload["usage"] = {"prompt_tokens": usage["prompt"], "total_tokens": usage["prompt"]}
        return JSONResponse(payload)

    @staticmethod
    def _tool(tool: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "call_1",
            "type": "function",
            "function": {
                "name": tool["name"],
                "arguments": json.dumps(tool.get("arguments", {})),
            },
        }

    async def _stream(
        self,
        body: dict[str, Any],
        tool: dict[str, Any] | None,
        reply: str,
        usage: dict[str, Any],
        rule: Rule,
    ) -> AsyncIterator[bytes]:
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        reply = rule.refusal if rule.refusal is not None else reply
        pieces = [w + " " for w in reply.split(" ")] if reply else [""]
        sent = 0
        try:
            yield chunk({"role": "assistant", "content": ""})
            if tool:  # a tool call streams its name, then its arguments in two parts
                call = self._tool(tool)
                arguments = call["function"]["arguments"]
                head = {**call, "index": 0, "function": {"name": call["function"]["name"],
                                                         "arguments": ""}}  # fmt: skip
                yield chunk({"tool_calls": [head]})
                for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                    yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                pieces = []
            for piece in pieces:
                if rule.cut_stream_after is not None and sent >= rule.cut_stream_after:
                    raise ConnectionResetError("scripted stream cut")
                if rule.chunk_delay_s:
                    await asyncio.sleep(rule.chunk_delay_s)
                yield chunk({"refusal" if rule.refusal is not None else "content": piece})
                sent += 1
            yield chunk({}, "tool_calls" if tool else "stop")
            include_usage = (body.get("stream_options") or {}).get("include_usage")
            if rule.usage and include_usage:
                data: dict[str, Any] = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model"),
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(data)}\n\n".encode()
            yield b"data: [DONE]\n\n"
        except asyncio.CancelledError:
            with self._lock:
                self.disconnects += 1
            raise

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Upstream:
        # IPPROTO_TCP: asyncio sets TCP_NODELAY only then (else ~40 ms delayed-ACK stalls).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="error", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._started_at = time.monotonic()
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("upstream stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            # Hanging handlers would keep a graceful shutdown waiting forever.
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _each(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the upstream stand-in alone.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--reply", default="ok")
    args = parser.parse_args()
    up = Upstream([Rule(delay_s=args.delay_ms / 1000, reply=args.reply)])
    up.port = args.port
    uvicorn.run(up.app(), host=up.host, port=args.port, log_level="error", access_log=False)


if __name__ == "__main__":
    main()
