"""The adapter: the one module that calls upstream models, for the proxy (router/) and the eval
runner (through `evals.call`) alike.

OpenAI-compatible upstreams (OpenAI, vLLM, most hosts) take a direct aiohttp path: the body is
forwarded as is and the upstream's bytes come back untouched. Other providers go through litellm
(`evals.llm.litellm()`, the only litellm import), whose response is serialised to OpenAI's shape.
benchmarks/bench_proxy.py and bench_eval.py measured why: litellm costs several ms of CPU per
call, the direct path < 1. A target's `params` and `system_prompt` (a variant's settings,
evals/variants.py) are applied to every request body here, on both paths.

Every failure becomes an `UpstreamError` that says whether another try may help.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from evals.estimate import message_text
from evals.llm import litellm
from evals.targets import Target

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})  # 529: overloaded
# The upstream refused *us* (bad key, unknown model there): another model may still answer.
FALLBACK_STATUS = RETRYABLE_STATUS | {401, 403, 404}
DONE = b"data: [DONE]\n\n"


class UpstreamError(Exception):
    """A failed call. `status` is the upstream's HTTP status (None: timeout or no connection)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kind: str = "http",  # http | timeout | connection | config
        retry_after: float | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind
        self.retry_after = retry_after
        self.body = body

    @property
    def retryable(self) -> bool:
        """The same model may answer if asked again."""
        return self.kind in ("timeout", "connection") or self.status in RETRYABLE_STATUS

    @property
    def falls_back(self) -> bool:
        """Another model may answer; False for the client's own mistakes (400, 422, ...)."""
        return self.kind != "http" or self.status in FALLBACK_STATUS


@dataclass
class Reply:
    """A non-streaming answer: the upstream's JSON bytes and its token counts."""

    content: bytes
    prompt_tokens: int | None
    completion_tokens: int | None


def _usage(data: Any) -> tuple[int | None, int | None]:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None, None
    return usage.get("prompt_tokens"), usage.get("completion_tokens")


def _retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header: a number, or (rarely from LLM providers) an HTTP date."""
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


async def _http_error(response: aiohttp.ClientResponse) -> UpstreamError:
    body = await response.read()
    return UpstreamError(
        f"upstream answered HTTP {response.status}",
        status=response.status,
        retry_after=_retry_after(response.headers),
        body=body,
    )


class Stream:
    """An open SSE stream whose first event has already arrived (so fallback was still possible).

    Iterate `events()` for raw SSE events; `prompt_tokens`/`completion_tokens` are filled from the
    usage chunk, which the proxy always requests and drops again unless the client asked for it.
    """

    def __init__(self, chunks: AsyncIterator[bytes], closer: Any, keep_usage: bool) -> None:
        self._chunks = chunks
        self._closer = closer
        self._keep_usage = keep_usage
        self._buffer = b""
        self.first: bytes | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.done = False
        self._text: list[str] = []

    @property
    def text(self) -> str:
        """What the stream generated so far (content and tool-call arguments)."""
        return "".join(self._text)

    async def _next_event(self) -> bytes | None:
        while True:
            end = self._buffer.find(b"\n\n")
            if end >= 0:
                event, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
                if event.strip():
                    return event
                continue
            try:
                chunk = await self._chunks.__anext__()
            except (aiohttp.ClientError, OSError) as exc:
                raise UpstreamError(
                    f"connection lost ({type(exc).__name__})", kind="connection"
                ) from None
            except StopAsyncIteration:
                if self._buffer.strip():
                    raise UpstreamError(
                        "upstream stream ended mid-event", kind="connection"
                    ) from None
                return None
            self._buffer += chunk.replace(b"\r\n", b"\n")

    def _inspect(self, event: bytes) -> bool:
        """Record usage and the streamed text; False when the event is the usage-only chunk the
        client did not ask for."""
        if event.startswith(DONE[:12]):
            self.done = True
            return True
        try:
            data = json.loads(event[event.index(b"data:") + 5 :])
        except ValueError:
            return True
        if isinstance(data, dict) and isinstance(data.get("choices"), list):
            for choice in data["choices"]:  # kept to count tokens if no usage comes
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict):
                    self._text += message_text(delta)
        if b'"usage"' not in event:
            return True
        prompt, completion = _usage(data)
        if prompt is not None:
            self.prompt_tokens, self.completion_tokens = prompt, completion
        return self._keep_usage or not isinstance(data, dict) or bool(data.get("choices"))

    async def prime(self) -> None:
        event = await self._next_event()
        if event is None:
            raise UpstreamError("upstream closed the stream before any data", kind="connection")
        self.first = event

    async def events(self) -> AsyncGenerator[bytes, None]:
        """The remaining events; raises UpstreamError if the upstream breaks off without [DONE]."""
        event = self.first
        while event is not None:
            if self._inspect(event):
                yield event
            if self.done:
                return
            event = await self._next_event()
        raise UpstreamError("upstream ended the stream without [DONE]", kind="connection")

    async def aclose(self) -> None:
        await self._closer()


class Adapter:
    """Calls targets. One shared connection pool; create in the app's lifespan, `aclose()` after."""

    def __init__(self) -> None:
        # aiohttp, not httpx: httpcore's pool scans every connection per request, which made
        # the proxy slower than LiteLLM's at 64 concurrent requests (benchmarks/README.md).
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=None),  # deadlines: asyncio.timeout per call
            skip_auto_headers=("user-agent",),
        )

    async def aclose(self) -> None:
        await self.session.close()

    @staticmethod
    def _body(target: Target, body: dict[str, Any], stream: bool) -> dict[str, Any]:
        out = dict(body)
        out.update(target.params)  # a variant's settings define it: they win over the request's
        if target.system_prompt:
            system = {"role": "system", "content": target.system_prompt}
            out["messages"] = [system, *(out.get("messages") or [])]
        out["model"] = target.upstream_model
        if stream:
            options = dict(out.get("stream_options") or {})
            options["include_usage"] = True  # cost needs the token counts
            out["stream_options"] = options
        return out

    async def complete(self, target: Target, body: dict[str, Any], timeout_s: float) -> Reply:
        """One non-streaming call, bounded by `timeout_s` in total."""
        if target.broken:
            raise UpstreamError(target.broken, kind="config")
        try:
            async with asyncio.timeout(timeout_s):
                if not target.direct:
                    return await self._litellm_complete(target, body, timeout_s)
                assert target.url is not None
                payload = json.dumps(self._body(target, body, False)).encode()
                async with self.session.post(
                    target.url, data=payload, headers=target.headers
                ) as response:
                    if response.status != 200:
                        raise await _http_error(response)
                    content = await response.read()
        except TimeoutError:
            raise UpstreamError(
                f"upstream gave no answer within {timeout_s:.1f}s", kind="timeout"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError(
                f"upstream connection failed: {type(exc).__name__}", kind="connection"
            ) from None
        try:
            data = json.loads(content)
        except ValueError:
            raise UpstreamError(
                "upstream answered with a body that is not JSON", status=502
            ) from None
        return Reply(content, *_usage(data))

    async def open_stream(
        self, target: Target, body: dict[str, Any], timeout_s: float, keep_usage: bool
    ) -> Stream:
        """Start a streaming call and wait for its first event (bounded by `timeout_s`)."""
        if target.broken:
            raise UpstreamError(target.broken, kind="config")
        stream: Stream | None = None
        try:
            async with asyncio.timeout(timeout_s):
                if target.direct:
                    stream = await self._direct_stream(target, body, keep_usage)
                else:
                    stream = await self._litellm_stream(target, body, keep_usage, timeout_s)
                await stream.prime()
                return stream
        except BaseException as exc:
            if stream is not None:
                await stream.aclose()
            if isinstance(exc, TimeoutError):
                raise UpstreamError(
                    f"upstream sent nothing within {timeout_s:.1f}s", kind="timeout"
                ) from None
            if isinstance(exc, aiohttp.ClientError | OSError):
                raise UpstreamError(
                    f"upstream connection failed: {type(exc).__name__}", kind="connection"
                ) from None
            raise

    async def _direct_stream(self, target: Target, body: dict[str, Any], keep: bool) -> Stream:
        assert target.url is not None
        payload = json.dumps(self._body(target, body, True)).encode()
        response = await self.session.post(target.url, data=payload, headers=target.headers)
        if response.status != 200:
            try:
                raise await _http_error(response)
            finally:
                response.release()
        stream: Stream

        async def close() -> None:
            # A stream read to [DONE] gives its connection back to the pool; one abandoned
            # midway (client gone, timeout) must be closed so the upstream stops generating.
            if stream.done:
                response.release()
            else:
                response.close()

        stream = Stream(response.content.iter_any(), close, keep)
        return stream

    # -- litellm, for providers with their own protocols --------------------------------------
    @staticmethod
    def _litellm_error(exc: Exception) -> UpstreamError:
        llm = litellm()
        if isinstance(exc, llm.Timeout):
            return UpstreamError("upstream timed out (litellm)", kind="timeout")
        if isinstance(exc, llm.APIConnectionError):
            return UpstreamError("upstream connection failed (litellm)", kind="connection")
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else 502
        body = json.dumps({"error": {"message": str(exc), "type": type(exc).__name__}}).encode()
        headers = getattr(exc, "litellm_response_headers", None)
        if headers is None:
            headers = getattr(getattr(exc, "response", None), "headers", None)
        return UpstreamError(
            f"upstream answered HTTP {status} (litellm)",
            status=status,
            retry_after=_retry_after(headers),
            body=body,
        )

    def _litellm_kwargs(
        self, target: Target, body: dict[str, Any], stream: bool, timeout_s: float
    ) -> dict[str, Any]:
        kwargs = {**self._body(target, body, stream), **target.litellm_kwargs}
        kwargs["model"] = target.upstream_model
        kwargs["num_retries"] = kwargs["max_retries"] = 0  # retries and fallbacks are ours
        kwargs["timeout"] = timeout_s  # this attempt's share (the model's own timeout at most)
        return kwargs

    async def _litellm_complete(
        self, target: Target, body: dict[str, Any], timeout_s: float
    ) -> Reply:
        try:
            kwargs = self._litellm_kwargs(target, body, False, timeout_s)
            response = await litellm().acompletion(**kwargs)
        except Exception as exc:
            raise self._litellm_error(exc) from None
        data = response.model_dump()
        return Reply(json.dumps(data).encode(), *_usage(data))

    async def _litellm_stream(
        self, target: Target, body: dict[str, Any], keep: bool, timeout_s: float
    ) -> Stream:
        try:
            kwargs = self._litellm_kwargs(target, body, True, timeout_s)
            response = await litellm().acompletion(**kwargs)
        except Exception as exc:
            raise self._litellm_error(exc) from None

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response:
                    yield b"data: " + json.dumps(chunk.model_dump()).encode() + b"\n\n"
            except Exception as exc:
                raise self._litellm_error(exc) from None
            yield DONE

        async def close() -> None:
            closer = getattr(response, "aclose", None)
            if closer is not None:
                await closer()

        return Stream(chunks(), close, keep)
