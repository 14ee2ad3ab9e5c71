"""Benchmark: scripts/setup.sh run twice; the second run must take < 10 % of the first.

    python bench/bench_setup.py            two runs now, against the longest recorded cold run
    python bench/bench_setup.py --quick    the same (bench/run passes it; warm runs are cheap)
    python bench/bench_setup.py --cold     also force a real cold image build (debootstrap +
                                           docker build, ~2 min) under throw-away image tags,
                                           and record it for later runs

On a machine that is already set up the "first" run is warm, so a plain first-vs-second
comparison would say nothing. Honest figures come from either a run that really did the work
(setup.sh records every run, with what it did, in $FANCY_ENV_STATE/setup-history.tsv; in CI
that is the test script's own first call) or `--cold`, which builds the base and single-user
images afresh under unique tags in a throw-away state dir, then removes them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "scripts" / "setup.sh"


def default_state() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/fancy-env")
    return Path.home() / ".local/state/fancy-env"


def run_setup(env: dict[str, str]) -> tuple[float, str]:
    """One run of setup.sh: (seconds, what it did according to its last log line)."""
    t0 = time.monotonic()
    out = subprocess.run(
        ["bash", str(SETUP)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - t0
    if out.returncode != 0:
        sys.exit(f"setup.sh failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    did = last.split("did: ", 1)[1].rstrip(")") if "did: " in last else "?"
    return seconds, did


def last_cold_run(history: Path) -> tuple[str, float, str] | None:
    """The longest recorded run that did real work (installed packages or built the base)."""
    try:
        rows = [line.split("\t") for line in history.read_text().splitlines()]
    except FileNotFoundError:
        return None
    cold = [r for r in rows if len(r) == 3 and ("apt:" in r[2] or "base-image" in r[2])]
    if not cold:
        return None
    when, seconds, did = max(cold, key=lambda r: float(r[1]))
    return when, float(seconds), did


def report(label: str, first: float, first_did: str, second: float, second_did: str) -> bool:
    ratio = second / first if first > 0 else float("inf")
    ok = ratio < 0.10
    print(f"[{label}] first run: {first:8.2f} s (did: {first_did})")
    print(f"[{label}] second run: {second:7.2f} s (did: {second_did})")
    print(f"[{label}] ratio second/first: {ratio:.1%} (target < 10%): {'OK' if ok else 'MISS'}")
    return ok


def cold_measurement() -> bool:
    tag = uuid.uuid4().hex[:8]
    images = {
        "FANCY_ENV_BASE_IMAGE": f"fancy-env/bench-base:{tag}",
        "FANCY_ENV_SINGLEUSER_IMAGE": f"fancy-env/bench-singleuser:{tag}",
    }
    with tempfile.TemporaryDirectory(prefix="fancy-env-bench-") as state:
        env = {"FANCY_ENV_STATE": state, **images}
        try:
            first, first_did = run_setup(env)
            second, second_did = run_setup(env)
        finally:
            subprocess.run(["docker", "rmi", "-f", *images.values()], capture_output=True)
    history = Path(os.environ.get("FANCY_ENV_STATE") or default_state()) / "setup-history.tsv"
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with history.open("a") as f:  # later --quick runs compare against this real cold run
        f.write(f"{when}\t{first:.3f}\tbench-cold:{first_did}\n")
    return report("cold images", first, first_did, second, second_did)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for bench/run; no effect")
    parser.add_argument("--cold", action="store_true", help="force a real cold image build")
    args = parser.parse_args(argv)
    state = Path(os.environ.get("FANCY_ENV_STATE") or default_state())
    recorded = last_cold_run(state / "setup-history.tsv")
    first, first_did = run_setup({})
    second, second_did = run_setup({})
    ok = True
    if first_did != "none":
        ok = report("this machine, now", first, first_did, second, second_did)
    else:
        print(f"[this machine, now] both runs warm: {first:.2f} s and {second:.2f} s (did: none)")
        if recorded is not None:
            when, seconds, did = recorded
            print(f"[recorded] longest recorded run that did real work: {when}")
            ok = report("recorded cold vs now", seconds, did, second, second_did)
        else:
            print("[recorded] no cold run recorded on this machine; --cold measures one")
    if args.cold:
        ok = cold_measurement() and ok
    print(f"bench_setup: {'OK' if ok else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
