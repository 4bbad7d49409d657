"""Where a request goes: the policy's plan, its session's model first, capable models only.

1. `model` names a policy (its plan decides the models) or a configured model (passed through).
2. Sessions (router/sessions.py): a first turn is routed by the plan; a later turn of the
   conversation starts with the model the session is on, then the plan's dearer models;
   cheaper ones stay as a last resort for fallback (never for a cascade's escalation).
3. Capabilities (evals/capabilities.py): models that lack what the request needs (tools,
   vision, JSON-schema output, its output limit or context size), or that cannot take a
   feature only the client's own protocol carries (`ChatRequest.native_only`), are skipped.
   When none is left the client gets a 400 naming what each model lacks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from tradeoff.evals.targets import Target
from tradeoff.policies.families.base import RouteRequest
from tradeoff.router.call import Route
from tradeoff.router.errors import ProxyError, bad_request
from tradeoff.router.request import ChatRequest, input_tokens, unknown_model, utf8_size
from tradeoff.router.review.drafts import draft_models
from tradeoff.router.sessions import continues, price_rank, session_id
from tradeoff.router.state import ProxyState

# What the request log says about routes no plan chose.
PASS_THROUGH_REASON = "pass-through: the client named this model"
VIOLATION_REASON = "violation fallback: the policy's baseline serves until a new version"
NATIVE_APIS = {
    "responses": "the Responses API as is (OpenAI's API, or `api: responses` in models.yaml)",
    "anthropic": "Anthropic's Messages API as is (an Anthropic model, or `api: anthropic`)",
}
PARAMS = {"tools": "tools", "vision": "messages", "json_schema": "response_format"}


def resolve_route(state: ProxyState, chat: ChatRequest, *, routed: bool = True) -> Route:
    """The route for a checked request; `routed=False` (pass-through APIs) takes only a
    configured model. Raises a 404 for an unknown model, a 400 when no model can serve it."""
    route = _planned(state, chat, routed)
    route = _pinned(state, chat, route)
    return _capable(state, chat, route)


async def await_pin(state: ProxyState, chat: ChatRequest) -> None:
    """Before routing a later turn of a conversation: on replicas sharing their sessions, wait
    briefly for a pin another replica may be telling this one of (router/replicas/sessions.py)."""
    sessions = state.sessions
    if sessions is None or not sessions.hears_others or chat.model not in state.policies.current:
        return
    sid = session_id(chat.body, chat.client_session)
    if sid is not None and continues(chat.body, chat.native):
        await sessions.arrival(_session_key(chat.model, sid))


def _session_key(policy: str, sid: str) -> str:
    return f"{policy}\x00{sid}"  # a session is scoped to the policy asked for


def _planned(state: ProxyState, chat: ChatRequest, routed: bool) -> Route:
    served = state.policies.current.get(chat.model)
    if served is not None:
        if not routed:
            raise bad_request(
                f"{chat.model!r} is a policy; /v1/{chat.protocol} goes to one configured model "
                f"(one of: {', '.join(state.targets) or 'none'})",
                "model",
                "model_not_routable",
            )
        if state.loop is not None and state.loop.serves_baseline(served):
            # The violation fallback (router/loop/live.py): a policy-level switch, sessions aside.
            assert served.baseline is not None
            return Route(
                (served.baseline,),
                served.name,
                served.baseline,
                served=served,
                by_baseline=True,
                reason=VIOLATION_REASON,
            )
        plan = served.policy.plan(RouteRequest(chat.prompt, chat.task))
        planned, reason = plan.models, plan.reason or None
        review = state.reviewers.get(planned[0]) if planned else None
        if review is not None:  # a person reviews; a draft answers meanwhile (router/review)
            planned = draft_models(state, review, planned[1:], served.baseline)
            drafted = f"review by {review.name}, {planned[0]} drafts"
            reason = f"{reason}; {drafted}" if reason else drafted
        models, last_resort = _ending_in_baseline(state, planned, served.baseline)
        return Route(
            models,
            served.name,
            served.baseline,
            plan.verifier,
            plan.samples,
            served=served,
            version=policy_version(state, served),
            reason=reason,
            fallback_only=last_resort,
            review=review,
        )
    if chat.model in state.targets:
        return Route((chat.model,), reason=PASS_THROUGH_REASON)
    if chat.model in state.reviewers and routed:
        review = state.reviewers[chat.model]
        models = draft_models(state, review, (), None)
        return Route(
            models, reason=f"{PASS_THROUGH_REASON}; review, {models[0]} drafts", review=review
        )
    raise unknown_model(chat.model, state.model_names())


def _ending_in_baseline(
    state: ProxyState, models: tuple[str, ...], baseline: str | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The plan's models, then its baseline if the plan lacks it: a plan is never one model deep
    while the baseline is configured. The appended baseline is reached only when the plan's
    models fail, never by a verifier's escalation (that would change what the policy pays)."""
    if baseline is None or baseline in models or baseline not in state.targets:
        return models, ()
    return (*models, baseline), (baseline,)


def policy_version(state: ProxyState, served: Any) -> str:
    """A fingerprint of a served policy (family and parameters): a new version (a promotion, an
    edited file) differs, every proxy computes the same one. Cached per served object (a reload
    makes a new one)."""
    found = state.policy_versions.get(id(served))
    if found is not None and found[0] is served:
        return found[1]
    doc = json.dumps([served.policy.family, served.policy.to_params()], default=str)
    version = hashlib.sha256(doc.encode()).hexdigest()[:16]
    if len(state.policy_versions) > 64:
        state.policy_versions.clear()
    state.policy_versions[id(served)] = (served, version)
    return version


def _pinned(state: ProxyState, chat: ChatRequest, route: Route) -> Route:
    if route.policy is None or route.by_baseline or state.sessions is None:
        return route
    sid = session_id(chat.body, chat.client_session)
    if sid is None:
        return route
    key = _session_key(route.policy, sid)
    first_turn = not continues(chat.body, chat.native)
    route = replace(route, session=sid, session_key=key, first_turn=first_turn)
    pin = None if first_turn else state.sessions.get(key)
    if pin is None or pin.version != route.version or pin.model not in state.targets:
        return route  # a new session, or one a policy switch made new: route it afresh
    others = [m for m in route.models if m != pin.model]
    dearer = [m for m in others if price_rank(state.targets[m]) > pin.rank]
    cheaper = [] if route.verifier else [m for m in others if m not in dearer]
    reason = f"session continues on {pin.model}" + (
        f" (plan: {route.reason})" if route.reason else ""
    )
    return replace(route, models=(pin.model, *dearer, *cheaper), reason=reason)


class _PromptSize:
    """The request's input tokens, counted only when a context window is close."""

    def __init__(self, chat: ChatRequest) -> None:
        self.chat = chat
        messages = chat.body.get("messages")
        self.messages = len(messages) if isinstance(messages, list) else 0
        tools = chat.body.get("tools")
        self.tools = json.dumps(tools) if tools else ""
        # Every token is at least one byte: a prompt this many bytes long fits any window
        # at least this large, without tokenizing it.
        self.bound = utf8_size(chat.prompt) + len(self.tools) + 3 * self.messages + 3
        self.counted: dict[str, int] = {}

    def tokens(self, target: Target) -> int:
        window = target.capabilities.context_window
        if window is not None and self.bound <= window:
            return self.bound
        model = target.upstream_model
        if model not in self.counted:
            self.counted[model] = input_tokens(self.chat, model)
        return self.counted[model]


def _capable(state: ProxyState, chat: ChatRequest, route: Route) -> Route:
    targets = [state.targets[m] for m in route.models]
    windows = any(t.capabilities.context_window is not None for t in targets)
    if not chat.needs and chat.native_only is None and not windows:
        return route
    size = _PromptSize(chat)
    kept: list[str] = []
    lacking: dict[str, list[str]] = {}
    for target in targets:
        tokens = size.tokens(target) if target.capabilities.context_window else None
        missing = target.capabilities.missing(chat.needs, tokens)
        if chat.native_only and not target.speaks(chat.protocol):
            missing.append(f"{NATIVE_APIS[chat.protocol]}, needed for {chat.native_only}")
        if missing:
            lacking[target.name] = missing
        else:
            kept.append(target.name)
    if not kept:
        raise _cannot_serve(route, lacking)
    if len(kept) == len(targets):
        return route
    skipped = f"skipped {', '.join(lacking)} (lacking what the request needs)"
    reason = f"{route.reason}; {skipped}" if route.reason else skipped
    return replace(route, models=tuple(kept), reason=reason)


def _cannot_serve(route: Route, lacking: dict[str, list[str]]) -> ProxyError:
    detail = "; ".join(f"{m} lacks {', '.join(what)}" for m, what in lacking.items())
    if route.policy:
        verdict = f"no model of policy {route.policy!r} can serve this request: {detail}"
    else:
        verdict = f"model {route.models[0]!r} cannot serve this request: {detail}"
    first = next(iter(lacking.values()))[0]
    return ProxyError(
        400,
        f"{verdict}. Send a request without what is missing, or "
        "route to a model that has it (`capabilities` in models.yaml says what each model can "
        "do, where litellm's model info is wrong or silent)",
        param=PARAMS.get(first),
        code="model_cannot_serve",
    )
