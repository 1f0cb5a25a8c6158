"""Fixtures: the reference servers (``reference-peers``, a process driven over stdin), a
fresh state directory with the test master key, the environment pointing the plugin at
the servers, and the CLI binary for the cross-checks (``scripts/test-python`` builds both
and names them in ``REFERENCE_PEERS`` and ``PROVIDER_HOST_CLI``)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import threading
import time

import pytest

import provider_host

REPO = pathlib.Path(__file__).resolve().parents[3]
SKILL = REPO / "host" / "python" / "skill" / "xai-grok-onboarding"
# The seed skill, beside the repository (as CI lays it out).
SEED = REPO.parent / "shared" / "seed" / "000_805550e07786559c.txt"
# A fixed master key, so tests never touch a real one (tests/all/support.rs's).
TEST_KEY_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
# The plugin's variables the tests set or clear (as tests/all/support.rs's `cli`).
PLUGIN_VARS = [
    "XAI_OAUTH_ISSUER",
    "XAI_API_BASE",
    "XAI_CLIENT_ID",
    "XAI_OAUTH_SCOPE",
    "XAI_ROUTE",
    "XAI_SUBSCRIPTION_BASE",
    "XAI_SUBSCRIPTION_CLIENT_VERSION",
    "RUST_LOG",
]


def binary(var: str, name: str) -> str:
    path = os.environ.get(var) or str(REPO / "target" / "debug" / name)
    if not os.path.exists(path):
        pytest.fail(f"{name} not found at {path}: build it (scripts/test-python does)")
    return path


class Peers:
    """The reference authorization server and model API, in a child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [binary("REFERENCE_PEERS", "reference-peers"), "--max-seconds", "600"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            # The key the stores of these tests are encrypted with (read by `tokens`).
            env={**os.environ, "PROVIDER_HOST_KEY": TEST_KEY_HEX},
        )
        ready = json.loads(self.proc.stdout.readline())
        self.issuer = ready["issuer"]
        self.api_base = ready["api_base"]
        self.subscription_base = ready["subscription_base"]
        self._lock = threading.Lock()

    def call(self, op: str, **args) -> dict:
        with self._lock:
            self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self.proc.stdin.flush()
            answer = json.loads(self.proc.stdout.readline())
        assert answer["ok"], answer
        return answer

    def approve(self, user_code: str, tier: int = 1, subject: str = "user-1") -> None:
        self.call("approve", user_code=user_code, tier=tier, subject=subject)

    def fault(self, server: str, route: str, fault: str) -> None:
        self.call("fault", server=server, route=route, fault=fault)

    def stats(self) -> dict:
        return self.call("stats")

    def tokens(self, state_dir: str, tenant: str = "default") -> list[str]:
        return self.call("tokens", state_dir=state_dir, tenant=tenant)["tokens"]

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def peers():
    p = Peers()
    yield p
    p.close()


class Env:
    """The environment of one test: process variables for in-process calls, the same for
    the CLI and the seed's blocks in child processes."""

    def __init__(self, peers: Peers, state_dir: pathlib.Path) -> None:
        self.peers = peers
        self.state_dir = state_dir
        self.vars = {
            "PROVIDER_HOST_STATE_DIR": str(state_dir),
            "PROVIDER_HOST_KEY": TEST_KEY_HEX,
            "XAI_OAUTH_ISSUER": peers.issuer,
            "XAI_API_BASE": peers.api_base,
            "XAI_SUBSCRIPTION_BASE": peers.subscription_base,
        }

    def child_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in PLUGIN_VARS}
        env.update(self.vars)
        return env

    def cli(self, *args: str) -> dict:
        """One script-mode CLI call: its one JSON object."""
        out = subprocess.run(
            [binary("PROVIDER_HOST_CLI", "provider-host"), *args],
            env=self.child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [line for line in out.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, (out.stdout, out.stderr)
        return json.loads(lines[0])

    def cli_lines(self, *args: str) -> list[dict]:
        """A CLI call printing JSON lines (`chat --stream --json`)."""
        out = subprocess.run(
            [binary("PROVIDER_HOST_CLI", "provider-host"), *args],
            env=self.child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def login(self, tenant: str | None = None, tier: int = 1) -> dict:
        """start, approve, poll in this process: connected."""
        host = provider_host.default_host()
        prompt = host.start(tenant=tenant)
        assert prompt["ok"], prompt
        self.peers.approve(prompt["user_code"], tier=tier)
        outcome = host.poll(prompt["pending_id"], tenant=tenant)
        assert outcome.get("status") == "connected", outcome
        return outcome


@pytest.fixture
def env(peers, tmp_path, monkeypatch):
    e = Env(peers, tmp_path / "state")
    for var in PLUGIN_VARS:
        monkeypatch.delenv(var, raising=False)
    for k, v in e.vars.items():
        monkeypatch.setenv(k, v)
    # The module-level functions read the environment now set.
    provider_host.configure()
    yield e
    provider_host.configure()


def wait_past_refresh_window() -> None:
    """A forced refresh within two seconds of another is left out (the plugin's rule, so
    that concurrent forced refreshes redeem once); tests that want one wait past it."""
    time.sleep(2.2)
