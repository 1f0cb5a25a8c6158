"""The package's contract: denial and expiry, one redemption when Python and the CLI
refresh at once, the stream iterator, an error dict for each code the seed's table names,
no token in any returned value, threads, and configuration by keyword."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time

import pytest

import provider_host
from conftest import binary, wait_past_refresh_window


def assert_error(result, code: str) -> None:
    """An expected failure: a plain dict with the code, a message and an action in the
    package's words (never the CLI's flags or commands)."""
    assert isinstance(result, dict), result
    assert result["ok"] is False, result
    assert result["error"] == code, result
    assert isinstance(result["message"], str) and result["message"], result
    action = result["action"]
    assert isinstance(action, str) and action, result
    assert "--" not in action and "`login`" not in action and "`key set`" not in action, action


def test_access_denied_is_an_error_dict_that_says_not_to_retry(env):
    prompt = provider_host.start()
    env.peers.call("deny", user_code=prompt["user_code"])
    result = provider_host.poll()
    assert_error(result, "access_denied")
    assert "Do not retry" in result["action"] and "key_set()" in result["action"]
    assert provider_host.status()["connected"] is False


def test_an_expired_device_code_is_expired_token(env):
    prompt = provider_host.start()
    env.peers.call("expire", user_code=prompt["user_code"])
    result = provider_host.poll(prompt["pending_id"])
    assert_error(result, "expired_token")
    assert "start()" in result["action"]


def test_python_and_the_cli_refreshing_at_once_redeem_the_token_once(env):
    start = env.cli("start")
    env.peers.approve(start["user_code"], tier=1)
    assert env.cli("poll")["status"] == "connected"
    wait_past_refresh_window()
    before = env.peers.stats()
    cli = binary("PROVIDER_HOST_CLI", "provider-host")
    children = [
        subprocess.Popen(
            [cli, "refresh"], env=env.child_env(), stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results: list[dict] = []
    threads = [
        threading.Thread(target=lambda: results.append(provider_host.refresh()))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for child in children:
        out, _ = child.communicate(timeout=120)
        results.append(json.loads(out))
    assert len(results) == 8
    for r in results:
        assert r["ok"] is True and r["connected"] is True, r
    stats = env.peers.stats()
    assert stats["refresh_redemptions"] - before["refresh_redemptions"] == 1, stats
    assert stats["reuse_detections"] == before["reuse_detections"], stats
    assert provider_host.status()["connected"] is True
    assert env.cli("status")["connected"] is True


def test_a_streamed_chat_is_an_iterator_of_the_clis_stream_events(env):
    env.login()
    stream = provider_host.chat("Hello there", stream=True)
    assert iter(stream) is stream
    events = list(stream)
    assert events, events
    last = events[-1]
    assert last["ok"] is True and last["done"] is True, last
    deltas = "".join(e["delta"] for e in events if "delta" in e)
    assert deltas and last["content_bytes"] == len(deltas.encode())
    # The same turn as the CLI's JSON lines, event for event (the server numbers its
    # reasoning items per request).
    def numbered(items):
        return [re.sub(r"_\d+", "_N", json.dumps(e, sort_keys=True)) for e in items]

    assert numbered(env.cli_lines("chat", "--stream", "--json", "Hello there")) == numbered(
        events
    )
    # And the whole reply says the same.
    whole = provider_host.chat("Hello there")
    assert whole["ok"] is True and whole["content"] == deltas, whole
    assert list(stream) == []  # spent


def test_a_stream_that_fails_ends_with_an_error_dict(env):
    env.login()
    for route in ("responses", "chat_completions"):
        env.peers.fault("rail", route, "unavailable")
    events = list(provider_host.chat("Hello", stream=True))
    assert_error(events[-1], "upstream_unavailable")


# The seed's error table: 429 rate limit, access_denied at login, 401 after refresh()
# (revoked or cancelled), 503/5xx upstream; and its poll outcomes (expired) and the
# state it starts from (nothing to poll).
@pytest.mark.parametrize(
    "code",
    [
        "rate_limited",
        "access_denied",
        "unauthorized",
        "upstream_unavailable",
        "expired_token",
        "not_connected",
    ],
)
def test_each_error_code_of_the_seeds_table_is_an_error_dict(env, code):
    if code == "not_connected":
        result = provider_host.poll()
    elif code in ("access_denied", "expired_token"):
        prompt = provider_host.start()
        op = "deny" if code == "access_denied" else "expire"
        env.peers.call(op, user_code=prompt["user_code"])
        result = provider_host.poll()
    elif code == "unauthorized":
        env.login()
        wait_past_refresh_window()
        env.peers.fault("auth", "refresh", "invalid_grant")
        result = provider_host.refresh()
        assert "logout()" in result["action"], result
    else:
        env.login()
        fault = "rate_limited" if code == "rate_limited" else "unavailable"
        for route in ("responses", "chat_completions"):
            env.peers.fault("rail", route, fault)
        result = provider_host.chat("Hello")
        if code == "rate_limited":
            assert result["retry_after_seconds"] == 7, result
    assert_error(result, code)


def test_no_token_appears_in_any_returned_value(env):
    returned: list = []

    def keep(value):
        returned.append(value)
        return value

    prompt = keep(provider_host.start())
    keep(provider_host.poll())
    env.peers.approve(prompt["user_code"])
    time.sleep(1.1)
    keep(provider_host.poll())
    tokens = set(env.peers.tokens(str(env.state_dir)))
    keep(provider_host.status())
    keep(provider_host.models(force=True))
    keep(provider_host.models(route="api"))
    keep(provider_host.usage())
    keep(provider_host.chat("Hello"))
    events = list(provider_host.chat("Hello", stream=True))
    assert events[-1]["done"] is True, events
    keep(provider_host.chat("Hello", route="api", thinking={"effort": "low"}))
    wait_past_refresh_window()
    keep(provider_host.refresh())
    tokens |= set(env.peers.tokens(str(env.state_dir)))
    api_key = "xai-" + "k3y" * 12
    stored = keep(provider_host.key_set(api_key))
    assert stored["stored"] is True and stored["last_four"] == api_key[-4:], stored
    keep(provider_host.key_status())
    env.peers.fault("rail", "chat_completions", "unauthorized")
    env.peers.fault("rail", "responses", "unauthorized")
    keep(provider_host.chat("Hello"))
    tokens |= set(env.peers.tokens(str(env.state_dir)))
    keep(provider_host.key_delete())
    keep(provider_host.logout())
    keep(provider_host.status())

    # The scan looks for real tokens: access tokens (JWTs) and refresh tokens.
    assert len(tokens) >= 3 and any(t.count(".") == 2 for t in tokens), len(tokens)
    for value in returned:
        assert isinstance(value, dict) and isinstance(value.get("ok"), bool), value
    text = json.dumps(returned + events)
    for token in tokens:
        assert token not in text
    assert api_key not in text and api_key[:-4] not in text


def test_calls_from_several_threads_run_at_once_without_the_gil(env):
    env.login()
    results: list = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(provider_host.chat(f"hi {i}")))
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(r["ok"] for r in results), results
    assert sorted(r["content"] for r in results) == sorted(
        provider_host.chat(f"hi {i}")["content"] for i in range(6)
    )

    # While one call waits on a stalled server, this thread keeps running Python code.
    for route in ("responses", "chat_completions"):
        env.peers.fault("rail", route, "stall")
    done = threading.Event()
    slow = threading.Thread(target=lambda: (provider_host.chat("slow"), done.set()))
    slow.start()
    spins = 0
    began = time.monotonic()
    while not done.is_set() and time.monotonic() - began < 30:
        spins += 1
    slow.join()
    assert time.monotonic() - began >= 1.0
    assert spins > 10_000, spins


def test_configuration_by_keyword_and_one_host_for_many_tenants(env, monkeypatch, tmp_path):
    # Nothing in the environment: the keywords say it all.
    for var in list(env.vars):
        if var != "PROVIDER_HOST_KEY":
            monkeypatch.delenv(var)
    state = tmp_path / "other-state"
    host = provider_host.Host(
        state_dir=str(state),
        settings={
            "XAI_OAUTH_ISSUER": env.peers.issuer,
            "XAI_API_BASE": env.peers.api_base,
            "XAI_SUBSCRIPTION_BASE": env.peers.subscription_base,
        },
    )
    assert host.tenant == "default" and str(host.state_dir) == str(state)
    for tenant in ("alice", "bob"):
        prompt = host.start(tenant=tenant)
        assert prompt["ok"], prompt
        if tenant == "alice":
            env.peers.approve(prompt["user_code"], subject="alice")
            assert host.poll(tenant=tenant)["status"] == "connected"
    assert host.status(tenant="alice")["connected"] is True
    assert host.status(tenant="bob")["connected"] is False
    assert host.status()["connected"] is False
    # The CLI on the same state directory sees the same tenants.
    monkeypatch.setenv("PROVIDER_HOST_STATE_DIR", str(state))
    env.vars["PROVIDER_HOST_STATE_DIR"] = str(state)
    assert env.cli("--tenant", "alice", "status")["connected"] is True
    assert env.cli("--tenant", "bob", "status")["connected"] is False


def test_a_bad_setting_is_a_config_error_dict_not_an_exception(env):
    host = provider_host.Host(settings={"XAI_API_BASE": "http://api.example.com/v1"})
    result = host.status()
    assert_error(result, "config_error")
    assert "XAI_API_BASE" in result["message"] and "loopback" in result["message"]
    assert "configure()" in result["action"]
    # A chat with nothing to say, or an unknown lane: invalid input, no exception.
    assert_error(provider_host.chat(), "invalid_input")
    assert_error(provider_host.chat("hi", lane="sideways"), "invalid_input")
    events = list(provider_host.chat("hi", thinking="extreme", stream=True))
    assert len(events) == 1
    assert_error(events[0], "invalid_input")


def test_doctor_is_the_clis_report(env):
    def check(report, name):
        return next(c for c in report["checks"] if c["name"] == name)

    # Not signed in: the login check fails with its fix; the endpoints answer.
    report = provider_host.doctor()
    assert report["ok"] is False, report
    assert check(report, "login")["status"] == "fail" and "login" in check(report, "login")["fix"]
    assert check(report, "endpoint oauth-issuer")["status"] == "ok", report

    env.login()
    report = provider_host.doctor()
    assert report["ok"] is True, report
    for name in ("login", "route subscription: catalogue", "route subscription: first turn"):
        assert check(report, name)["status"] == "ok", report
    # The same checks as the CLI's, in the same order.
    cli = env.cli("doctor", "--json", "--no-chat")
    mine = provider_host.doctor(with_chat=False)
    assert [(c["name"], c["status"]) for c in mine["checks"]] == [
        (c["name"], c["status"]) for c in cli["checks"]
    ]


def test_the_postgresql_backend_holds_the_login_for_python_and_the_cli(env, monkeypatch):
    url = env.peers.call("postgres")["url"]
    # By keyword: the login goes to the database, not the state directory's files.
    host = provider_host.Host(secrets_url=url)
    prompt = host.start()
    assert prompt["ok"], prompt
    env.peers.approve(prompt["user_code"])
    assert host.poll()["status"] == "connected"
    assert provider_host.Host().status()["connected"] is False  # the file store: empty
    # By environment, as the CLI reads it: both see the login.
    monkeypatch.setenv("PROVIDER_HOST_SECRETS_URL", url)
    env.vars["PROVIDER_HOST_SECRETS_URL"] = url
    assert provider_host.Host().status()["connected"] is True
    assert env.cli("status")["connected"] is True
    assert env.cli("logout")["was_connected"] is True
    assert host.status()["connected"] is False
