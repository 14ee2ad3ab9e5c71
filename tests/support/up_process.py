"""`fancy-env up` as a subprocess, for the integration and browser tests.

    up = UpProcess(tmp_path / "state", extra=["--allow-loopback-repos"]).start()
    up.url, up.password          # parsed from the banner `up` prints once
    up.interrupt()               # SIGINT, as Ctrl-C would; returns the exit code

`leftovers()` reports what an `up` left behind: containers with its label, processes that
carry its marker or name its state dir (or descend from one), and its ports still listening.
The test's own bystanders (a `tail -f` of the hub log, a shell in the state dir) are passed as
`spare`: they name the state dir too, but `up` did not start them.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .net import free_port

BANNER_URL = re.compile(r"the hub is ready at (http://\S+)")
BANNER_PASSWORD = re.compile(r"any user name and the password: (\S+)")
BANNER_ADMIN = re.compile(r"admin password: (\S+)\)")
ROOT = Path(__file__).resolve().parent.parent.parent


def up_id(state: Path) -> str:
    """Same id as fancy_env.up.up_id_for, computed independently."""
    return hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:10]


@dataclass
class UpProcess:
    state: Path
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    password: str = ""
    admin_password: str = ""
    via_run_sh: bool = False

    @property
    def out_path(self) -> Path:
        return self.state.parent / f"{self.state.name}-up.out"

    def output(self) -> str:
        try:
            return self.out_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def hub_log(self, lines: int = 60) -> str:
        try:
            text = (self.state / "jupyterhub.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no hub log)"
        return "\n".join(text.splitlines()[-lines:])

    def command(self) -> list[str]:
        """`python -m fancy_env.cli up ...`, or with `via_run_sh` the README's own command
        (`bash scripts/run.sh ...`: set-up check, install if needed, then exec `up`)."""
        self.port = self.port or free_port()
        args = ["--state-dir", str(self.state), "--port", str(self.port), *self.extra]
        if self.via_run_sh:
            return ["bash", str(ROOT / "scripts" / "run.sh"), *args]
        return [sys.executable, "-m", "fancy_env.cli", "up", *args]

    def start(self, timeout: float = 120) -> UpProcess:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        with self.out_path.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
            )
        deadline = time.monotonic() + timeout
        while not BANNER_URL.search(self.output()):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"fancy-env up exited {self.proc.returncode}:\n"
                    f"{self.output()}\n--- hub log ---\n{self.hub_log()}"
                )
            if time.monotonic() > deadline:
                self.interrupt()
                raise RuntimeError(f"no URL after {timeout}s:\n{self.output()}\n{self.hub_log()}")
            time.sleep(0.2)
        text = self.output()
        self.url = _group(BANNER_URL, text)
        self.password = _group(BANNER_PASSWORD, text)
        self.admin_password = _group(BANNER_ADMIN, text)
        return self

    def run_to_exit(self, timeout: float = 60) -> tuple[int, str]:
        """Run `up` expecting it to stop by itself (a failed preflight); (code, output)."""
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        out = subprocess.run(
            self.command(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )
        return out.returncode, out.stdout + out.stderr

    def interrupt(self, timeout: float = 120) -> int:
        """SIGINT (Ctrl-C) and wait for `up` to finish its cleanup; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def login(self, name: str, password: str | None = None) -> requests.Session:
        s = requests.Session()
        s.get(self.url + "hub/login", timeout=10)
        r = s.post(
            self.url + "hub/login",
            timeout=30,
            data={
                "username": name,
                "password": password or self.password,
                "_xsrf": s.cookies.get("_xsrf", ""),
            },
        )
        r.raise_for_status()
        assert "hub/login" not in r.url, f"login as {name} failed: {r.url}"
        return s

    def generated_ports(self) -> set[int]:
        """Every port named in the generated hub config (hub, proxy API, build service, ...)."""
        text = (self.state / "jupyterhub_config.py").read_text()
        found = re.findall(r"(?:port\s*=\s*|127\.0\.0\.1:)(\d{2,5})\b", text)
        return {int(p) for p in found} | {self.port}

    def force_cleanup(self) -> None:
        """Teardown safety net after a failed test: kill and remove whatever is left."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        containers, pids, _ = leftovers(self.state, set())
        if containers:
            subprocess.run(["docker", "rm", "-f", *containers], capture_output=True)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _group(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    return match.group(1) if match else ""


def leftovers(
    state: Path, ports: set[int], spare: frozenset[int] = frozenset()
) -> tuple[list[str], dict[int, str], set[int]]:
    """(container ids with our label, {pid: cmdline} of our processes, our ports listening);
    `spare` pids and their descendants are not counted."""
    ident = up_id(state)
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=fancy-env.up={ident}"],
        capture_output=True,
        text=True,
        check=True,
    )
    containers = out.stdout.split()
    return containers, our_processes(state, ident, spare), ports & listening_ports()


def our_processes(state: Path, ident: str, spare: frozenset[int] = frozenset()) -> dict[int, str]:
    """Processes whose environment holds our marker, whose command line names the state dir
    or that work inside it, and all their descendants (walking /proc), except `spare` ones
    and their descendants (deliberately broad: this is the check, not `up`'s own rule)."""
    parent, cmdline, seeds = {}, {}, set()
    needle = f"FANCY_ENV_UP_ID={ident}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            parent[pid] = int(stat.rsplit(")", 1)[1].split()[1])
            cmdline[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except (OSError, IndexError, ValueError):
            continue
        if needle in env or str(state) in cmdline[pid] or (cwd + "/").startswith(f"{state}/"):
            seeds.add(pid)
    ours, spared = set(seeds), set(spare)
    changed = True
    while changed:
        more = {pid for pid, ppid in parent.items() if ppid in ours} - ours
        more_spared = {pid for pid, ppid in parent.items() if ppid in spared} - spared
        ours |= more
        spared |= more_spared
        changed = bool(more or more_spared)
    return {pid: cmdline.get(pid, "") for pid in ours - spared}


def listening_ports() -> set[int]:
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(name).read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) > 3 and parts[3] == "0A":
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports
