"""The adapter: the one module that calls upstream models, for the proxy (router/) and the eval
runner (through `evals.call`) alike.

OpenAI-compatible upstreams (OpenAI, vLLM, most hosts) take a direct aiohttp path: the body is
forwarded as is and the upstream's bytes come back untouched. Other providers go through litellm
(`evals.llm.litellm()`, the only litellm import), whose response is serialised to OpenAI's shape.
benchmarks/bench_proxy.py and bench_eval.py measured why: litellm costs several ms of CPU per
call, the direct path < 1. A target's `params` and `system_prompt` (a variant's settings,
evals/variants.py) are applied to every request body here, on both paths.

Besides chat completions (`complete`, `open_stream`), `call` and `open_api_stream` reach the
other APIs the proxy serves: an upstream's native Responses or Anthropic Messages endpoint
(`Target.native_urls`), and embeddings and legacy completions (direct, or through litellm).

Every failure becomes an `UpstreamError` that says whether another try may help.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from tradeoff.evals.llm import litellm
from tradeoff.evals.targets import Target
from tradeoff.evals.upstream_errors import FALLBACK_STATUS, RETRYABLE_STATUS, UpstreamError
from tradeoff.evals.upstream_stream import DONE, Stream
from tradeoff.evals.usage import Usage, from_anthropic, from_chat, from_embeddings, from_responses

__all__ = [
    "DONE",
    "FALLBACK_STATUS",
    "RETRYABLE_STATUS",
    "Adapter",
    "Reply",
    "Stream",
    "UpstreamError",
    "reply_usage",
]


@dataclass
class Reply:
    """A non-streaming answer: the upstream's JSON bytes, in `api`'s shape, and its usage."""

    content: bytes
    usage: Usage | None
    api: str = "chat"  # chat | completions | embeddings | responses | anthropic

    @property
    def prompt_tokens(self) -> int | None:
        return None if self.usage is None else self.usage.prompt

    @property
    def completion_tokens(self) -> int | None:
        return None if self.usage is None else self.usage.completion


_USAGE = {
    "chat": from_chat,
    "completions": from_chat,
    "embeddings": from_embeddings,
    "responses": from_responses,
    "anthropic": from_anthropic,
}


def reply_usage(api: str, data: Any) -> Usage | None:
    """The usage in one `api` answer's parsed JSON."""
    return _USAGE[api](data.get("usage") if isinstance(data, dict) else None)


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
    def _body(target: Target, body: dict[str, Any], stream: bool, api: str = "chat") -> dict:
        out = dict(body)
        if api in ("chat", "completions", "embeddings"):
            # A variant's settings define it: they win over the request's. (Native Responses
            # and Messages calls never go to a variant: `Target.speaks`.)
            out.update(target.params)
        if target.system_prompt and api == "chat":
            system = {"role": "system", "content": target.system_prompt}
            out["messages"] = [system, *(out.get("messages") or [])]
        native = api in target.native_urls  # the provider's own API: its own model name
        out["model"] = target.provider_model if native else target.upstream_model
        if stream and api in ("chat", "completions"):
            options = dict(out.get("stream_options") or {})
            options["include_usage"] = True  # cost needs the token counts
            out["stream_options"] = options
        return out

    @staticmethod
    def _endpoint(target: Target, api: str) -> tuple[str, dict[str, str]] | None:
        """URL and headers of a direct call of `api`; None: the call goes through litellm."""
        if api in target.native_urls:
            headers = target.native_headers if api == "anthropic" else target.headers
            return target.native_urls[api], headers
        if not target.direct:
            if api not in ("chat", "completions", "embeddings"):
                raise UpstreamError(
                    f"model {target.name!r} does not take the {api} API as is", kind="config"
                )
            return None
        assert target.url is not None and target.base_url is not None
        return (target.url if api == "chat" else f"{target.base_url}/{api}"), target.headers

    async def complete(self, target: Target, body: dict[str, Any], timeout_s: float) -> Reply:
        """One non-streaming chat completion, bounded by `timeout_s` in total."""
        return await self.call(target, "chat", body, timeout_s)

    async def call(
        self,
        target: Target,
        api: str,
        body: dict[str, Any],
        timeout_s: float,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One non-streaming call of `api` (chat, completions, embeddings, responses, anthropic),
        bounded by `timeout_s` in total; the upstream's JSON comes back untouched. `headers`
        are the client's to add on a direct call (Anthropic's beta flags)."""
        if target.broken:
            raise UpstreamError(target.broken, kind="config")
        try:
            async with asyncio.timeout(timeout_s):
                endpoint = self._endpoint(target, api)
                if endpoint is None:
                    return await self._litellm_call(target, api, body, timeout_s)
                url, sent = endpoint
                payload = json.dumps(self._body(target, body, False, api)).encode()
                sent = {**headers, **sent} if headers else sent
                async with self.session.post(url, data=payload, headers=sent) as response:
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
        return Reply(content, reply_usage(api, data), api)

    async def open_stream(
        self, target: Target, body: dict[str, Any], timeout_s: float, keep_usage: bool
    ) -> Stream:
        """Start a streaming chat completion and wait for its first event (within
        `timeout_s`)."""
        return await self.open_api_stream(target, "chat", body, timeout_s, keep_usage)

    async def open_api_stream(
        self,
        target: Target,
        api: str,
        body: dict[str, Any],
        timeout_s: float,
        keep_usage: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Stream:
        """Start a streaming call of `api` and wait for its first event (within `timeout_s`)."""
        if target.broken:
            raise UpstreamError(target.broken, kind="config")
        stream: Stream | None = None
        try:
            async with asyncio.timeout(timeout_s):
                endpoint = self._endpoint(target, api)
                if endpoint is not None:
                    if headers:
                        endpoint = (endpoint[0], {**headers, **endpoint[1]})
                    stream = await self._direct_stream(target, api, endpoint, body, keep_usage)
                else:
                    stream = await self._litellm_stream(target, api, body, keep_usage, timeout_s)
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

    async def _direct_stream(
        self,
        target: Target,
        api: str,
        endpoint: tuple[str, dict[str, str]],
        body: dict[str, Any],
        keep: bool,
    ) -> Stream:
        url, headers = endpoint
        payload = json.dumps(self._body(target, body, True, api)).encode()
        response = await self.session.post(url, data=payload, headers=headers)
        if response.status != 200:
            try:
                raise await _http_error(response)
            finally:
                response.release()
        stream: Stream

        async def close() -> None:
            # A stream read to its end gives its connection back to the pool; one abandoned
            # midway (client gone, timeout) must be closed so the upstream stops generating.
            if stream.done:
                response.release()
            else:
                response.close()

        stream = Stream(response.content.iter_any(), close, keep, api)
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
        self, target: Target, body: dict[str, Any], stream: bool, timeout_s: float, api: str
    ) -> dict[str, Any]:
        kwargs = {**self._body(target, body, stream, api), **target.litellm_kwargs}
        kwargs["model"] = target.upstream_model
        kwargs["num_retries"] = kwargs["max_retries"] = 0  # retries and fallbacks are ours
        kwargs["timeout"] = timeout_s  # this attempt's share (the model's own timeout at most)
        return kwargs

    @staticmethod
    def _litellm_function(api: str) -> Any:
        name = {"chat": "acompletion", "completions": "atext_completion"}.get(api, "aembedding")
        return getattr(litellm(), name)

    async def _litellm_call(
        self, target: Target, api: str, body: dict[str, Any], timeout_s: float
    ) -> Reply:
        try:
            kwargs = self._litellm_kwargs(target, body, False, timeout_s, api)
            response = await self._litellm_function(api)(**kwargs)
        except Exception as exc:
            raise self._litellm_error(exc) from None
        data = response.model_dump()
        return Reply(json.dumps(data).encode(), reply_usage(api, data), api)

    async def _litellm_stream(
        self, target: Target, api: str, body: dict[str, Any], keep: bool, timeout_s: float
    ) -> Stream:
        try:
            kwargs = self._litellm_kwargs(target, body, True, timeout_s, api)
            response = await self._litellm_function(api)(**kwargs)
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

        return Stream(chunks(), close, keep, api)
