"""Sign in with Grok from Python: the sandboxed xAI model-provider plugin, in-process.

Every function is the ``provider-host`` CLI's subcommand of the same name, run in this
process on the same state directory, tenant and secret backend (a login made by either is
seen by the other), and returns the CLI's JSON object as a plain dict::

    {"ok": True, ...the CLI's keys...}
    {"ok": False, "error": "<code>", "message": "...", "action": "..."}

No expected failure raises, and no token is ever returned. Calls release the GIL and are
safe from several threads. Configure by keyword (``configure(...)`` once, or a
:class:`Host` per configuration) or by the environment the CLI reads
(``PROVIDER_HOST_STATE_DIR``, ``PROVIDER_HOST_SECRETS_URL``, ``PROVIDER_HOST_KEY``, and
the plugin's own variables such as ``XAI_API_BASE`` or ``XAI_ROUTE``).
"""

from __future__ import annotations

import threading

from ._native import ChatStream, Host, component_info

__all__ = [
    "ChatStream",
    "Host",
    "chat",
    "component_info",
    "configure",
    "default_host",
    "doctor",
    "key_delete",
    "key_set",
    "key_status",
    "logout",
    "models",
    "poll",
    "refresh",
    "start",
    "status",
    "usage",
]

_lock = threading.Lock()
_default: Host | None = None


def configure(
    *,
    state_dir=None,
    tenant=None,
    plugin=None,
    secrets_url=None,
    routes=None,
    settings=None,
    allow_env=None,
    call_timeout_secs=None,
) -> Host:
    """Set what the module-level functions use (a host running many tenants calls this
    once and names the tenant per call with ``tenant=``). Returns the new default host."""
    global _default
    host = Host(
        state_dir=state_dir,
        tenant=tenant,
        plugin=plugin,
        secrets_url=secrets_url,
        routes=routes,
        settings=settings,
        allow_env=allow_env,
        call_timeout_secs=call_timeout_secs,
    )
    with _lock:
        _default = host
    return host


def default_host() -> Host:
    """The host the module-level functions use: the last :func:`configure`'s, else one
    configured from the environment alone."""
    global _default
    with _lock:
        if _default is None:
            _default = Host()
        return _default


def status(*, tenant=None):
    """Credential state, tier, subscription, expiry, models and routes (no token)."""
    return default_host().status(tenant=tenant)


def start(*, tenant=None):
    """Begin a device login: ``verification_url_with_code`` for the user to open and
    approve, ``user_code``, ``pending_id``, ``expires_in_seconds``. Then wait for the user
    before :func:`poll`."""
    return default_host().start(tenant=tenant)


def poll(pending_id=None, *, tenant=None):
    """Ask once whether the pending login was approved: ``status`` is ``"pending"`` or
    ``"connected"`` (with the status keys). ``access_denied``: do not retry."""
    return default_host().poll(pending_id, tenant=tenant)


def logout(*, tenant=None):
    """Revoke and delete the credentials, and flush cached models."""
    return default_host().logout(tenant=tenant)


def refresh(*, tenant=None):
    """Redeem the refresh token now (normally automatic); the status keys."""
    return default_host().refresh(tenant=tenant)


def models(force=False, *, route=None, tenant=None):
    """The chat models this account may use on a route (``force=True`` bypasses the
    cache)."""
    return default_host().models(force, route=route, tenant=tenant)


def usage(route=None, *, tenant=None):
    """What is left of a route's quota, when upstream says."""
    return default_host().usage(route, tenant=tenant)


def key_set(key, *, tenant=None):
    """Store the API key that key routes (``api-key``) spend; only ``stored`` and
    ``last_four`` come back."""
    return default_host().key_set(key, tenant=tenant)


def key_status(*, tenant=None):
    """Whether an API key is stored, and its last four characters."""
    return default_host().key_status(tenant=tenant)


def key_delete(*, tenant=None):
    """Delete the stored API key (the login is not touched)."""
    return default_host().key_delete(tenant=tenant)


def chat(
    message=None,
    *,
    messages=None,
    request=None,
    model=None,
    route=None,
    lane=None,
    thinking=None,
    system=None,
    max_output_tokens=None,
    stream=False,
    tenant=None,
):
    """One chat turn: the CLI's ``chat --json`` dict; with ``stream=True`` (or
    ``"stream": True`` in a ``request`` body) an iterator of its ``--stream --json`` events
    ending with ``{"ok": True, "done": True, ...}`` or an error dict."""
    return default_host().chat(
        message,
        messages=messages,
        request=request,
        model=model,
        route=route,
        lane=lane,
        thinking=thinking,
        system=system,
        max_output_tokens=max_output_tokens,
        stream=stream,
        tenant=tenant,
    )


def doctor(with_chat=True, *, routes=None, tenant=None):
    """Every check a working setup needs, against the live configuration: the sandbox's
    allowlist, each endpoint, the stored login, each usable route's catalogue, version
    gate (one minimal streamed turn, a token or two; ``with_chat=False`` skips it) and
    quota. The CLI's ``doctor --json`` report: ``{"ok": bool, "checks": [{"name",
    "status", "detail", "fix"}]}`` (``ok`` false when a check failed)."""
    return default_host().doctor(with_chat, routes=routes, tenant=tenant)
