"""The seed skill's own bash blocks, verbatim from the seed with only the skill's path
changed, drive a whole login against the reference servers; the CLI sees the login."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import SEED, SKILL, wait_past_refresh_window

SEED_PATH = "/data/workspace/skills/xai-grok-onboarding"


def seed_blocks() -> dict[str, str]:
    """The seed's bash blocks by the export they import (each appears twice in the seed,
    once per language: identical)."""
    if not SEED.exists():
        pytest.skip(f"the seed skill is not at {SEED}")
    text = SEED.read_text(encoding="utf-8")
    blocks = re.findall(r"(python3 - <<'EOF'\n.*?\nEOF)\n", text, re.S)
    by_export: dict[str, str] = {}
    for block in blocks:
        name = re.search(r"from exports import (\w+)", block).group(1)
        assert by_export.setdefault(name, block) == block, f"two different {name} blocks"
    assert set(by_export) == {"start", "poll"}, by_export.keys()
    return by_export


def run_block(block: str, env) -> dict:
    """A bash block as an agent runs it, the skill's path changed to this checkout's, with
    the venv's python3 first on PATH."""
    assert SEED_PATH in block
    script = block.replace(SEED_PATH, str(SKILL))
    child = env.child_env()
    child["PATH"] = os.path.dirname(sys.executable) + os.pathsep + child.get("PATH", "")
    out = subprocess.run(
        ["bash", "-c", script], env=child, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def like(block: str, export: str, call: str) -> str:
    """The seed's start block with another export of the same table (the seed shows only
    start and poll; the others are called the same way)."""
    return block.replace("import start", f"import {export}").replace("start()", call)


def test_the_seed_blocks_drive_a_whole_login(env):
    blocks = seed_blocks()
    start = run_block(blocks["start"], env)
    assert start["ok"] is True, start
    for key in ("verification_url_with_code", "user_code", "expires_in_seconds", "pending_id"):
        assert key in start, start
    assert start["verification_url_with_code"].startswith(env.peers.issuer)

    # Polled before the user approved: pending, nothing stored.
    pending = run_block(blocks["poll"], env)
    assert pending["ok"] is True and pending["status"] == "pending", pending
    assert pending["pending_id"] == start["pending_id"]

    env.peers.approve(start["user_code"], tier=1)
    time.sleep(1.1)  # the server's polling interval
    connected = run_block(blocks["poll"], env)
    assert connected["ok"] is True and connected["status"] == "connected", connected
    assert connected["connected"] is True
    assert connected["tier"] == 1 and connected["tier_name"]
    assert connected["default_model_id"]

    status = run_block(like(blocks["start"], "status", "status()"), env)
    assert status["ok"] and status["connected"] is True, status
    assert status["models"] and status["usable_routes"], status
    # The CLI sees the login made from Python (one state directory, one tenant).
    cli = env.cli("status")
    assert cli["connected"] is True and cli["tier"] == status["tier"], cli

    models = run_block(like(blocks["start"], "models", "models(force=True)"), env)
    assert models["ok"] and models["models"] and models["cached"] is False, models
    assert models["default_model_id"] == status["default_model_id"]

    wait_past_refresh_window()
    before = env.peers.stats()["refresh_redemptions"]
    refreshed = run_block(like(blocks["start"], "refresh", "refresh()"), env)
    assert refreshed["ok"] and refreshed["connected"] is True, refreshed
    assert env.peers.stats()["refresh_redemptions"] == before + 1

    logout = run_block(like(blocks["start"], "logout", "logout()"), env)
    assert logout["ok"] and logout["was_connected"] is True, logout
    assert env.cli("status")["connected"] is False
    after = run_block(like(blocks["start"], "status", "status()"), env)
    assert after["ok"] and after["connected"] is False, after


def test_a_login_made_by_the_cli_is_seen_from_python(env):
    import provider_host

    start = env.cli("start")
    env.peers.approve(start["user_code"], tier=1)
    assert env.cli("poll")["status"] == "connected"
    status = provider_host.status()
    assert status["ok"] and status["connected"] is True, status
    assert status == env.cli("status")
