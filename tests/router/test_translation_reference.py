"""Our Responses and Messages translators against litellm's, the reference implementation: the
same chat-completions messages and tools for the shapes both translate.

Deliberate differences, normalised away here: we send `developer` turns as `system` (open
models' chat templates know only that) and text-only content as a string; litellm spells
defaults out (`"description": ""`, `"strict": false`, `index`) and leaves `None`s in.
"""

from __future__ import annotations

from typing import Any

import pytest

from tradeoff.evals.llm import litellm
from tradeoff.router.protocols.anthropic import translate as ours_anthropic
from tradeoff.router.protocols.responses import translate as ours_responses

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}}


def normal(value: Any) -> Any:
    """Messages and tools with the spellings that mean the same made the same."""
    if isinstance(value, list):
        if value and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
            return "".join(p["text"] for p in value)
        return [normal(v) for v in value]
    if isinstance(value, dict):
        out = {k: normal(v) for k, v in value.items()
               if v is not None and k not in ("index", "thinking_blocks")}  # fmt: skip
        if out.get("role") == "developer":
            out["role"] = "system"
        if out.get("description") == "":
            del out["description"]
        if out.get("strict") is False:
            del out["strict"]
        return out
    return value


RESPONSES = [
    {"model": "m", "instructions": "be brief", "input": "hello"},
    {
        "model": "m",
        "tools": [{"type": "function", "name": "get_weather", "parameters": WEATHER}],
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                                         {"type": "input_image", "image_url": "https://x/y.png"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather",
             "arguments": '{"city": "Paris"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "It is sunny."}]},
            {"role": "developer", "content": "stay polite"},
        ],
    },
]  # fmt: skip
MESSAGES = [
    {"model": "m", "max_tokens": 5, "system": "be brief",
     "messages": [{"role": "user", "content": "hello"}]},
    {
        "model": "m", "max_tokens": 5,
        "tools": [{"name": "get_weather", "description": "Weather.", "input_schema": WEATHER}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather?"},
                                         {"type": "image", "source": {"type": "base64",
                                          "media_type": "image/png", "data": "AAAA"}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1",
                                               "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": "sunny"}]},
        ],
    },
]  # fmt: skip


@pytest.mark.parametrize("body", RESPONSES)
def test_responses_translation_agrees_with_litellm(body: dict[str, Any]) -> None:
    litellm()
    from litellm.responses.litellm_completion_transformation.transformation import (
        LiteLLMCompletionResponsesConfig,
    )

    params = {k: v for k, v in body.items() if k not in ("model", "input")}
    theirs = (
        LiteLLMCompletionResponsesConfig.transform_responses_api_request_to_chat_completion_request(
            model="m", input=body["input"], responses_api_request=params
        )
    )
    ours, translation = ours_responses(body)
    assert translation.untranslatable is None
    assert normal(ours["messages"]) == normal(theirs["messages"])
    assert normal(ours.get("tools")) == normal(theirs.get("tools"))


@pytest.mark.parametrize("body", MESSAGES)
def test_messages_translation_agrees_with_litellm(body: dict[str, Any]) -> None:
    litellm()
    from litellm.llms.anthropic.pass_through.adapters.transformation import (
        LiteLLMAnthropicMessagesAdapter,
    )

    theirs, _ = LiteLLMAnthropicMessagesAdapter().translate_anthropic_to_openai(body)  # type: ignore[arg-type]
    ours, translation = ours_anthropic(body)
    assert translation.untranslatable is None
    assert normal(ours["messages"]) == normal(theirs["messages"])
    assert normal(ours.get("tools")) == normal(theirs.get("tools"))
