"""Types of ``provider_host``: the dicts every call returns (the CLI's JSON objects).

Each call returns either its success dict (``ok: True``) or an :class:`Error`
(``ok: False``); narrow on ``result["ok"]``. No value ever holds a token.
"""

import pathlib
from collections.abc import Iterator, Mapping, Sequence
from os import PathLike
from typing import Any, Literal, TypedDict, overload

from typing_extensions import NotRequired

class Error(TypedDict):
    """An expected failure (never raised)."""

    ok: Literal[False]
    #: The stable code: ``access_denied``, ``expired_token``, ``rate_limited``,
    #: ``unauthorized``, ``upstream_unavailable``, ``not_connected``, ``config_error``, ...
    error: str
    #: What happened, in words (upstream's message when it gave one).
    message: str
    #: What to do next, naming this package's functions and keywords.
    action: str
    #: Seconds to wait before retrying, when upstream said (``rate_limited``).
    retry_after_seconds: NotRequired[int]
    #: The route whose quota is spent (``quota_exhausted``).
    route: NotRequired[str]
    #: Routes that could serve the request instead.
    alternatives: NotRequired[list[str]]

class ModelInfo(TypedDict):
    id: str
    route: str
    #: ``chat_completions``, ``responses`` or ``media``.
    lane: str
    owned_by: str
    created: int

class RouteInfo(TypedDict):
    name: str
    usable: bool
    detail: str
    #: Which pool its requests spend, for people.
    bills: str

class Status(TypedDict):
    """``status()`` and ``refresh()``."""

    ok: Literal[True]
    connected: bool
    tier: int | None
    tier_name: str | None
    subscription: str | None
    #: Unix seconds when the access token expires (it refreshes by itself).
    expires_at: int | None
    default_model_id: str | None
    models: list[ModelInfo]
    default_route: str
    api_key_stored: bool
    routes: list[RouteInfo]
    usable_routes: list[str]

class Prompt(TypedDict):
    """``start()``: what the user opens and approves."""

    ok: Literal[True]
    pending_id: str
    #: Open this (the code is in it); the user signs in and approves.
    verification_url_with_code: str
    verification_url: str
    user_code: str
    expires_in_seconds: int
    interval_seconds: int

class Pending(TypedDict):
    """``poll()`` before the user approved."""

    ok: Literal[True]
    status: Literal["pending"]
    pending_id: str
    interval_seconds: int
    expires_in_seconds: int

class Connected(Status):
    """``poll()`` once approved: the status keys and ``status: "connected"``."""

    status: Literal["connected"]

class Logout(TypedDict):
    ok: Literal[True]
    was_connected: bool
    revoked: bool

class Models(TypedDict):
    ok: Literal[True]
    route: str
    models: list[ModelInfo]
    media_models: list[ModelInfo]
    default_model_id: str | None
    bills: str
    cached: bool
    fetched_at: int

class Usage(TypedDict):
    """``usage()``: what upstream reported of a route's quota (``known`` false when it
    said nothing)."""

    ok: Literal[True]
    route: str
    known: bool
    percent_used: float | None
    period: Literal["weekly", "monthly"] | None
    period_start: int | None
    resets_at: int | None
    on_demand_cap_usd: float | None
    on_demand_used_usd: float | None
    prepaid_balance_usd: float | None
    summary: str | None
    detail: str
    fetched_at: int

class KeyInfo(TypedDict):
    """``key_set``, ``key_status``, ``key_delete``: never the key itself."""

    ok: Literal[True]
    stored: bool
    last_four: str | None

class ToolCall(TypedDict):
    id: str
    name: str
    #: JSON text.
    arguments: str

class TokenUsage(TypedDict):
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int | None
    cached_input_tokens: int | None
    total_tokens: int

class Citation(TypedDict):
    url: str
    title: str | None
    start_index: int | None
    end_index: int | None

class ReasoningItem(TypedDict):
    lane: str
    data: str

class Reply(TypedDict):
    """A whole chat turn (``chat()`` without ``stream``)."""

    ok: Literal[True]
    content: str
    tool_calls: list[ToolCall]
    reasoning: str | None
    reasoning_items: list[ReasoningItem]
    citations: list[Citation]
    model: str
    route: str
    lane: str
    usage: TokenUsage | None
    finish_reason: str | None

class StreamDone(TypedDict):
    """The last event of a stream that ended well."""

    ok: Literal[True]
    done: Literal[True]
    content_bytes: int
    finish_reason: str | None
    usage: TokenUsage | None
    citations: list[Citation]

#: One stream event: ``{"delta": str}``, ``{"reasoning_delta": str}``,
#: ``{"tool_call": {"index", "id", "name"}}``, ``{"tool_call_arguments": {"index",
#: "delta"}}``, ``{"reasoning_item": ReasoningItem}``; the last is a :class:`StreamDone`
#: or an :class:`Error`.
StreamEvent = dict[str, Any]

Thinking = Literal["low", "medium", "high"] | Mapping[str, str]
Lane = Literal["chat_completions", "responses"]
StrPath = str | PathLike[str]

class ChatStream(Iterator[StreamEvent]):
    """A streamed chat turn; each step releases the GIL."""

    def __iter__(self) -> ChatStream: ...
    def __next__(self) -> StreamEvent: ...
    def close(self) -> None:
        """End the stream early."""

class Host:
    """Settings for every call, and the compiled component once the first call ran.
    Thread-safe; what is not given comes from the environment the CLI reads."""

    def __init__(
        self,
        *,
        state_dir: StrPath | None = None,
        tenant: str | None = None,
        plugin: StrPath | None = None,
        secrets_url: str | None = None,
        routes: Sequence[str] | None = None,
        settings: Mapping[str, str] | None = None,
        allow_env: Sequence[str] | None = None,
        call_timeout_secs: int | None = None,
    ) -> None: ...
    @property
    def tenant(self) -> str: ...
    @property
    def state_dir(self) -> pathlib.Path | None: ...
    def status(self, *, tenant: str | None = None) -> Status | Error: ...
    def start(self, *, tenant: str | None = None) -> Prompt | Error: ...
    def poll(
        self, pending_id: str | None = None, *, tenant: str | None = None
    ) -> Pending | Connected | Error: ...
    def logout(self, *, tenant: str | None = None) -> Logout | Error: ...
    def refresh(self, *, tenant: str | None = None) -> Status | Error: ...
    def models(
        self, force: bool = False, *, route: str | None = None, tenant: str | None = None
    ) -> Models | Error: ...
    def usage(self, route: str | None = None, *, tenant: str | None = None) -> Usage | Error: ...
    def key_set(self, key: str, *, tenant: str | None = None) -> KeyInfo | Error: ...
    def key_status(self, *, tenant: str | None = None) -> KeyInfo | Error: ...
    def key_delete(self, *, tenant: str | None = None) -> KeyInfo | Error: ...
    def doctor(
        self,
        with_chat: bool = True,
        *,
        routes: Sequence[str] | None = None,
        tenant: str | None = None,
    ) -> Doctor | Error: ...
    @overload
    def chat(
        self,
        message: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | str | None = None,
        request: Mapping[str, Any] | str | None = None,
        model: str | None = None,
        route: str | None = None,
        lane: Lane | None = None,
        thinking: Thinking | None = None,
        system: str | None = None,
        max_output_tokens: int | None = None,
        stream: Literal[False] = False,
        tenant: str | None = None,
    ) -> Reply | Error | ChatStream: ...
    @overload
    def chat(
        self,
        message: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | str | None = None,
        request: Mapping[str, Any] | str | None = None,
        model: str | None = None,
        route: str | None = None,
        lane: Lane | None = None,
        thinking: Thinking | None = None,
        system: str | None = None,
        max_output_tokens: int | None = None,
        stream: Literal[True],
        tenant: str | None = None,
    ) -> ChatStream: ...

class Check(TypedDict):
    name: str
    status: Literal["ok", "warn", "fail", "skip"]
    detail: str
    #: What to do, for a failed check.
    fix: NotRequired[str]

class Doctor(TypedDict):
    """``doctor()``: ``ok`` is false when any check failed."""

    ok: bool
    checks: list[Check]

def configure(
    *,
    state_dir: StrPath | None = None,
    tenant: str | None = None,
    plugin: StrPath | None = None,
    secrets_url: str | None = None,
    routes: Sequence[str] | None = None,
    settings: Mapping[str, str] | None = None,
    allow_env: Sequence[str] | None = None,
    call_timeout_secs: int | None = None,
) -> Host:
    """Set what the module-level functions use (call once; name tenants per call)."""

def default_host() -> Host:
    """The host of the module-level functions."""

def component_info() -> dict[str, Any]:
    """The embedded component's ``bytes``, ``sha256`` and the package ``version``."""

def status(*, tenant: str | None = None) -> Status | Error:
    """Credential state, tier, subscription, expiry, models and routes."""

def start(*, tenant: str | None = None) -> Prompt | Error:
    """Begin a device login; wait for the user before :func:`poll`."""

def poll(pending_id: str | None = None, *, tenant: str | None = None) -> Pending | Connected | Error:
    """Ask once whether the login was approved; never retry ``access_denied``."""

def logout(*, tenant: str | None = None) -> Logout | Error:
    """Revoke and delete the credentials, and flush cached models."""

def refresh(*, tenant: str | None = None) -> Status | Error:
    """Redeem the refresh token now (normally automatic)."""

def models(force: bool = False, *, route: str | None = None, tenant: str | None = None) -> Models | Error:
    """The chat models of a route (``force=True`` bypasses the cache)."""

def usage(route: str | None = None, *, tenant: str | None = None) -> Usage | Error:
    """What is left of a route's quota."""

def key_set(key: str, *, tenant: str | None = None) -> KeyInfo | Error:
    """Store the API key that key routes spend."""

def key_status(*, tenant: str | None = None) -> KeyInfo | Error:
    """Whether an API key is stored."""

def key_delete(*, tenant: str | None = None) -> KeyInfo | Error:
    """Delete the stored API key."""

@overload
def chat(
    message: str | None = None,
    *,
    messages: Sequence[Mapping[str, Any]] | str | None = None,
    request: Mapping[str, Any] | str | None = None,
    model: str | None = None,
    route: str | None = None,
    lane: Lane | None = None,
    thinking: Thinking | None = None,
    system: str | None = None,
    max_output_tokens: int | None = None,
    stream: Literal[False] = False,
    tenant: str | None = None,
) -> Reply | Error | ChatStream:
    """One chat turn (a ``request`` body with ``"stream": true`` streams)."""

@overload
def chat(
    message: str | None = None,
    *,
    messages: Sequence[Mapping[str, Any]] | str | None = None,
    request: Mapping[str, Any] | str | None = None,
    model: str | None = None,
    route: str | None = None,
    lane: Lane | None = None,
    thinking: Thinking | None = None,
    system: str | None = None,
    max_output_tokens: int | None = None,
    stream: Literal[True],
    tenant: str | None = None,
) -> ChatStream:
    """One streamed chat turn: the CLI's stream events."""

def doctor(
    with_chat: bool = True, *, routes: Sequence[str] | None = None, tenant: str | None = None
) -> Doctor | Error:
    """Every check a working setup needs, each failed one with its fix (the CLI's
    ``doctor --json``)."""
