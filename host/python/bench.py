"""Wheel size and the cost of ``status()`` from Python, beside the CLI's ``status``.

    python bench.py --cli target/release/provider-host [--wheel target/wheels/x.whl] [-n 20]

Run with the Python that has ``provider_host`` installed (``scripts/bench`` builds a
release wheel into target/wheels and installs it into a venv). Every call runs against a
fresh state directory with no login, so nothing leaves this machine: ``status()`` of a
tenant that never logged in reads its store and answers from the plugin alone. Prints
one line per figure and a JSON summary; asserts nothing.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def millis(samples: list[float]) -> dict:
    return {
        "median_ms": round(statistics.median(samples) * 1000, 2),
        "min_ms": round(min(samples) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", help="the provider-host binary to compare with")
    parser.add_argument("--wheel", help="the wheel to measure (default: newest in target/wheels)")
    parser.add_argument("-n", type=int, default=20, help="calls per figure")
    args = parser.parse_args()

    figures: dict = {}
    wheel = args.wheel
    if wheel is None:
        here = os.path.dirname(os.path.abspath(__file__))
        found = sorted(
            glob.glob(os.path.join(here, "..", "..", "target", "wheels", "provider_host-*.whl")),
            key=os.path.getmtime,
        )
        wheel = found[-1] if found else None
    if wheel:
        figures["wheel_bytes"] = os.path.getsize(wheel)
        print(f"wheel: {figures['wheel_bytes'] / 1e6:.1f} MB ({os.path.basename(wheel)})")

    state = tempfile.mkdtemp(prefix="provider-host-bench-")
    env = dict(os.environ)
    env["PROVIDER_HOST_STATE_DIR"] = state
    env.setdefault("PROVIDER_HOST_KEY", "00" * 32)
    os.environ.update({k: env[k] for k in ("PROVIDER_HOST_STATE_DIR", "PROVIDER_HOST_KEY")})

    began = time.perf_counter()
    import provider_host  # noqa: E402  (timed: loading the extension)

    figures["import"] = round((time.perf_counter() - began) * 1000, 2)
    info = provider_host.component_info()
    figures["component_bytes"] = info["bytes"]
    print(f"import provider_host: {figures['import']} ms; component {info['bytes'] / 1e6:.1f} MB")

    host = provider_host.Host(state_dir=state)
    began = time.perf_counter()
    first = host.status()
    figures["python_first_status"] = round((time.perf_counter() - began) * 1000, 2)
    assert first["ok"], first
    print(f"python status(), first call (loads the component): {figures['python_first_status']} ms")

    samples = []
    for _ in range(args.n):
        began = time.perf_counter()
        host.status()
        samples.append(time.perf_counter() - began)
    figures["python_status"] = millis(samples)
    print(f"python status(), warm: {figures['python_status']}")

    if args.cli:
        samples = []
        for _ in range(args.n):
            began = time.perf_counter()
            out = subprocess.run([args.cli, "status"], env=env, capture_output=True)
            samples.append(time.perf_counter() - began)
            assert out.returncode == 0, out.stderr
        figures["cli_status"] = millis(samples)
        print(f"CLI provider-host status (a process per call): {figures['cli_status']}")

    print(json.dumps({"python_bench": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
