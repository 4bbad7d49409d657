"""What translating a client's Messages or Responses body to chat completions made of it.

The rule for every field a client may send that chat completions cannot take as is:

- **Hints** (thinking modes, effort, context management, client metadata, cache keys, reasoning
  items of earlier turns) are mapped where a mapping exists (`output_config.effort` and
  `reasoning.effort` to `reasoning_effort`) and otherwise dropped; the log row names what was
  dropped (`dropped`).
- **Built-in tools merely offered** (Codex's `web_search` and `namespace`, Anthropic's server
  tools, tools whose loading is deferred) are removed from what the translated model sees and
  named in the row the same way; `serve --strict-translation` makes them requirements again.
- **Requirements** (a forced built-in tool, a stored `previous_response_id`, content a chat
  model cannot read, fields this proxy does not know) make the request one only an upstream
  speaking the client's own API can serve; with none in the plan the client gets a 400 naming
  the feature.

Nothing is dropped for an upstream that takes the client's body as is.
"""

from __future__ import annotations

from typing import Any

from tradeoff.router.request import ChatRequest, chat_request


class Translation:
    """The chat messages of a translation, what it dropped, removed and could not carry."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.untranslatable: str | None = None  # the first requirement met
        self.dropped: list[str] = []  # hints left out, and offered built-in tools removed
        self.removed_tool: str | None = None  # the first offered built-in tool removed

    def cannot(self, what: str) -> None:
        """A requirement: only a native upstream can serve the request."""
        self.untranslatable = self.untranslatable or what

    def drop(self, what: str) -> None:
        """A hint left out of the translation (named once in the row)."""
        if what not in self.dropped:
            self.dropped.append(what)

    def remove_tool(self, name: str) -> None:
        """An offered built-in tool left out (a requirement under --strict-translation)."""
        self.drop(f"tool {name}")
        self.removed_tool = self.removed_tool or f"the built-in tool {name!r}"


def translated_request(
    chat: dict[str, Any],
    headers: Any,
    t: Translation,
    *,
    protocol: str,
    native: dict[str, Any],
    session: str | None = None,
) -> ChatRequest:
    """The internal request for a translated body; `session` is the client's own session id
    found in its body (the `x-tradeoff-session` header wins over it)."""
    return chat_request(
        chat,
        headers,
        protocol=protocol,
        native=native,
        native_only=t.untranslatable,
        dropped=tuple(t.dropped),
        removed_tool=t.removed_tool,
        session=session,
    )
