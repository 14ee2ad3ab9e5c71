"""The pieces of bench_eventloop.py: code trees, databases, the service process, the builds.

Everything here reaches the service through its HTTP API and its config file only: the
bench measures versions whose internals differ (the baseline is synchronous SQLAlchemy), so
it imports nothing of the service beyond the version-neutral client side (form tickets, the
shared event-stream parser) and the test helpers (a Git server, the PostgreSQL URL).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402

from fancy_env.builder.sse import SseMessage, SseParser  # noqa: E402
from fancy_env.tickets import HEADER, mint  # noqa: E402
from tests.support.db import pg_admin_url  # noqa: E402
from tests.support.gitserver import GitRepo, GitServer  # noqa: E402
from tests.support.net import free_port, wait_for  # noqa: E402

SECRET = b"bench-eventloop-ticket-secret"
#: the module that runs the service: the assembly where the tree has one (since the one web
#: layer; `python -m fancy_env.builder` would exec it, and loopwatch would be gone with the
#: exec), else the build service of the older tree
SERVICE_MODULES = ("fancy_env.service", "fancy_env.builder")
PREFIX = "/services/fancy-env/"
TERMINAL = ("built", "failed", "cancelled")
LINE_NUMBER = re.compile(r"line (\d+)$")


def normal_priority() -> None:
    """(In a child before exec) back to the normal scheduling priority."""
    os.setpriority(os.PRIO_PROCESS, 0, 0)


@contextlib.contextmanager
def poller_priority() -> Iterator[None]:
    """This process (the poller) at nice -5 meanwhile, when allowed (root); children started
    meanwhile must call normal_priority()."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -5)
    except PermissionError:
        pass
    try:
        yield
    finally:
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, 0, 0)


def ticket(user: str) -> tuple[str, str]:
    """(header, value) of a form ticket for `user`."""
    return HEADER, mint(SECRET, user, 3600)


# ---- code trees ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    key: str  # "current" / "baseline"
    label: str
    path: Path
    read_only: bool = False  # another checkout (--tree): Python writes no bytecode into it


def _git(*args: str, cwd: Path = ROOT) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _current(path: Path) -> Tree:
    read_only = path != ROOT
    try:
        head = _git("rev-parse", "--short", "HEAD", cwd=path)
        dirty = bool(_git("status", "--porcelain", "--", "fancy_env", cwd=path))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return Tree("current", f"current ({path.name})", path, read_only)
    return Tree("current", f"current {head}{' + changes' if dirty else ''}", path, read_only)


def _baseline(rev: str, tmp: Path, notes: list[str]) -> Tree | None:
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except (subprocess.CalledProcessError, FileNotFoundError):
        notes.append(f"baseline rows skipped: commit {rev} is not in this checkout")
        return None
    where = tmp / f"baseline-{commit[:9]}"
    where.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", commit], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(where)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {commit} failed")
    return Tree("baseline", f"baseline {commit[:7]}", where)


def _imports_from(tree: Tree, cwd: Path) -> None:
    """The service, started in `cwd`, runs this tree's code (PYTHONPATH beats the editable
    install; the working directory would beat PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": str(tree.path), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", "import fancy_env; print(fancy_env.__file__)"],
        env=env, cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not Path(out).resolve().is_relative_to(tree.path.resolve()):
        raise RuntimeError(f"{tree.label}: fancy_env imports from {out}, not {tree.path}")


def trees(current: Path, rev: str, tmp: Path, notes: list[str], only: str | None) -> list[Tree]:
    """[baseline, current] (the baseline left out, with a note, when the commit is missing)."""
    found: list[Tree] = []
    if only != "current":
        base = _baseline(rev, tmp, notes)
        if base is not None:
            found.append(base)
    if only != "baseline":
        found.append(_current(current.resolve()))
    for tree in found:
        _imports_from(tree, tmp)
    if len(found) == 2:
        same = subprocess.run(  # the service code of the current tree is the baseline's
            ["git", "diff", "--quiet", rev, "--", "fancy_env"], cwd=found[1].path,
            capture_output=True,
        ).returncode == 0  # fmt: skip
        if same:
            notes.append(
                f"the current tree's fancy_env/ is that of {rev}: both rows run the same code"
            )
    return found


# ---- databases ----------------------------------------------------------------------------


@dataclass
class Database:
    """A fresh database per run: a SQLite file, or a PostgreSQL database (dropped after)."""

    backend: str
    where: Path
    admin_url: str = ""
    name: str = ""

    def create(self) -> str:
        self.name = f"fe_bench_{secrets.token_hex(5)}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.where / (self.name + '.sqlite')}"
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        server = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        server.dispose()
        return make_url(self.admin_url).set(database=self.name).render_as_string(False)

    def drop(self) -> None:
        if self.backend != "postgresql" or not self.name:
            return
        from sqlalchemy import create_engine, text

        server = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        server.dispose()


def databases(where: Path, notes: list[str]) -> list[Database]:
    found = [Database("sqlite", where)]
    admin = pg_admin_url()
    if admin:
        found.append(Database("postgresql", where, admin))
    else:
        notes.append(
            "PostgreSQL rows skipped: no cluster ($FANCY_ENV_TEST_PG_URL or "
            "/var/lib/fancy-env/postgres-test.url; scripts/setup.sh --test starts one)"
        )
    return found


# ---- the service --------------------------------------------------------------------------

BASE_CONFIG = """\
c.BuilderApp.executor_class = "fancy_env.builder.executors.fake.FakeExecutor"
c.BuilderApp.ticket_secret = {secret!r}
c.BuilderApp.db_url = {db_url!r}
c.BuilderApp.allowed_http_hosts = {{"127.0.0.1"}}
c.BuilderApp.allowed_private_hosts = {{"127.0.0.1"}}
c.BuilderApp.image_prefix = "fancy-env-bench/"
c.BuilderApp.max_log_lines = 0
c.BuilderApp.max_log_bytes = 0
c.BuilderApp.max_streams_per_user = 0
c.BuilderApp.max_queued_per_user = 0
c.BuilderApp.max_concurrent_builds = 8
c.BuilderApp.max_builds_per_user = 8
"""


def big_config(lines: int) -> str:
    """The fake executor at full speed: one build writes `lines` log lines (stored in
    batches of half a second: nobody watches this build)."""
    return (
        f"c.FakeExecutor.lines_per_phase = {lines // 2}\nc.FakeExecutor.line_delay = 0\n"
        "c.BuilderApp.flush_interval = 0.5\n"
    )


def slow_config(quick: bool) -> str:
    """Builds of `slow` repositories write 10 x lines_per_phase lines per phase, 50 a second:
    they outlast the replay (10 minutes with --quick, 50 without)."""
    per_phase = 3000 if quick else 15000
    return f"c.FakeExecutor.lines_per_phase = {per_phase}\nc.FakeExecutor.line_delay = 0.02\n"


@dataclass
class Service:
    tree: Tree
    state: Path
    db_url: str
    port: int = 0
    prefix: str = PREFIX
    proc: subprocess.Popen[bytes] | None = None
    profiled: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def start(self, config: str, profile: Path | None = None) -> Service:
        self.state.mkdir(parents=True, exist_ok=True)
        path = self.state / "fancy_env_builder_config.py"
        path.write_text(BASE_CONFIG.format(secret=SECRET, db_url=self.db_url) + config)
        self.port = self.port or free_port()
        env = {k: v for k, v in os.environ.items() if k != "JUPYTERHUB_API_TOKEN"}
        env.update(
            PYTHONPATH=str(self.tree.path),
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{self.port}",
            JUPYTERHUB_SERVICE_PREFIX=self.prefix,
        )
        if self.tree.read_only:  # a tree measured with --tree stays as it was
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        wrap = [str(HERE / "loopwatch.py"), f"{profile}.loopwatch.json"] if profile else []
        self.profiled = profile is not None
        if profile:
            profile.parent.mkdir(parents=True, exist_ok=True)
        module = next(m for m in SERVICE_MODULES if (self.tree.path / m.replace(".", "/")).is_dir())
        cmd = [sys.executable, *wrap, "-m", module, f"--config={path}"]
        log = (self.state / "builder.log").open("ab")
        self.proc = subprocess.Popen(cmd, cwd=self.state, stdout=log, stderr=log, env=env)
        wait_for(self._up, timeout=60, what=f"{self.tree.label} service /health")
        return self

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("the service exited:\n" + self.tail())
        return requests.get(self.url + "health", timeout=2).status_code == 200

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def mark(self, sig: int) -> None:
        """Tell bench/loopwatch.py that the load starts (SIGUSR1) or ends (SIGUSR2)."""
        if self.profiled and self.proc is not None:
            self.proc.send_signal(sig)

    def tail(self, lines: int = 30) -> str:
        try:
            text = (self.state / "builder.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU time of the service process so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def request(self, method: str, path: str, user: str, **kw: Any) -> requests.Response:
        header, value = ticket(user)
        return requests.request(method, self.url + path, headers={header: value}, timeout=60, **kw)


# ---- builds -------------------------------------------------------------------------------


@dataclass
class Repos:
    server: GitServer
    big: GitRepo
    slow: list[GitRepo] = field(default_factory=list)

    @classmethod
    def start(cls, root: Path, slow: int) -> Repos:
        server = GitServer(root).start()
        big = server.create("big-log")
        return cls(server, big, [server.create(f"slow-build-{i}") for i in range(slow)])

    def stop(self) -> None:
        self.server.stop()


def _post(svc: Service, user: str, repo: GitRepo) -> str:
    r = svc.request("POST", "api/builds", user, json={"repo": repo.url})
    if r.status_code not in (200, 202):
        raise RuntimeError(f"POST api/builds {repo.name}: {r.status_code} {r.text[:300]}")
    return str(r.json()["id"])


def _status(svc: Service, build_id: str, user: str) -> str:
    r = svc.request("GET", f"api/builds/{build_id}", user)
    r.raise_for_status()
    return str(r.json()["status"])


def make_big_build(svc: Service, repo: GitRepo, lines: int) -> str:
    """A finished build of `lines` log lines, made by the service itself; then stopped."""
    svc.start(big_config(lines))
    try:
        build_id = _post(svc, "alice", repo)
        deadline = time.monotonic() + 900
        while (status := _status(svc, build_id, "alice")) not in TERMINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {lines}-line build is still {status} after 900 s")
            time.sleep(0.5)
        if status != "built":
            raise RuntimeError(f"the {lines}-line build ended {status}:\n{svc.tail()}")
        return build_id
    finally:
        svc.stop()


def start_slow_builds(svc: Service, repos: list[GitRepo]) -> list[tuple[str, str]]:
    """(build id, user) of one running build per repository (each of its own user)."""
    builds = [(_post(svc, f"builder{i}", repo), f"builder{i}") for i, repo in enumerate(repos)]
    deadline = time.monotonic() + 60
    while any(_status(svc, b, u) in ("queued", "resolving") for b, u in builds):
        if time.monotonic() > deadline:
            raise TimeoutError("the slow builds did not start within 60 s")
        time.sleep(0.2)
    time.sleep(1)  # let them write a few batches before the measurement
    return builds


def check_still_running(svc: Service, builds: list[tuple[str, str]]) -> list[str]:
    ended = [(b, s) for b, u in builds if (s := _status(svc, b, u)) in TERMINAL]
    return [f"slow build {b} was {s} before the replay ended" for b, s in ended]


def cancel(svc: Service, builds: list[tuple[str, str]]) -> None:
    for build_id, user in builds:
        svc.request("DELETE", f"api/builds/{build_id}", user)


def reference_replay(svc: Service, build_id: str) -> dict[str, Any]:
    """One replay parsed with the shared parser: events, numbered log lines, errors, and
    the digest of its bytes as a replay client computes it (bench/loadgen.py)."""
    parser, events, errors, raw = SseParser(), 0, [], loadgen.Replay()
    numbers: dict[str, int] = {}
    header, value = ticket("alice")
    with requests.get(
        svc.url + f"api/builds/{build_id}/events", headers={header: value}, stream=True,
        timeout=300,
    ) as r:  # fmt: skip
        r.raise_for_status()
        for chunk in r.iter_content(1 << 18):
            raw.feed(chunk)
            for message in parser.feed_bytes(chunk):
                if not isinstance(message, SseMessage):
                    continue
                events += 1
                if message.id != str(events):
                    errors.append(f"reference replay: event {events} has id {message.id}")
                data = message.json()
                m = LINE_NUMBER.search(data.get("message", ""))
                if m and data["phase"] in ("fetching", "building"):
                    expected = numbers.get(data["phase"], 0) + 1
                    if int(m.group(1)) != expected:
                        errors.append(f"reference replay: {data['phase']} line {m.group(1)}")
                    numbers[data["phase"]] = expected
    raw.finish()
    errors += [f"reference replay: {e}" for e in raw.errors]
    return {
        "events": events, "lines": sum(numbers.values()), "errors": errors[:3],
        "digest": raw.digest,
    }  # fmt: skip


# ---- profiles -----------------------------------------------------------------------------


@dataclass
class PySpy:
    """py-spy sampling the service (no pause of the process: --nonblocking)."""

    proc: subprocess.Popen[bytes]
    out: Path

    @classmethod
    def start(cls, svc: Service, profile: Path) -> PySpy:
        assert svc.proc is not None
        out = Path(f"{profile}.py-spy.txt")
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = ["py-spy", "record", "--pid", str(svc.proc.pid), "--rate", "200",
               "--format", "raw", "--nonblocking", "-o", str(out)]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        return cls(proc, out)

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        return summarise_stacks(self.out.read_text() if self.out.exists() else "")


def summarise_stacks(raw: str, top: int = 12) -> dict[str, Any]:
    """Own-time and inclusive counts of py-spy's collapsed stacks, for the event loop's
    thread (the stacks through `run_forever`); other threads' samples are only counted."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = other = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        if "run_forever" not in stack:
            other += int(count)
            continue
        frames = [_frame(f) for f in stack.split(";") if "(" in f]
        total += int(count)
        if frames:
            own[frames[-1]] += int(count)
        start = next((i for i, f in enumerate(frames) if "_run_once" in f), 0)
        for name in set(frames[start:]):  # below the loop: not main(), start()…
            inclusive[name] += int(count)
    return {
        "samples": total, "other_threads": other, "own": own.most_common(top),
        "inclusive": [(k, v) for k, v in inclusive.most_common(top * 4) if "fancy_env" in k][:top],
    }  # fmt: skip


def _frame(frame: str) -> str:
    """`func (path/to/mod.py:123)` -> `func (mod.py)`: counted per function, not per line."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    keep = path.split("site-packages/")[-1] if "site-packages/" in path else path
    keep = keep.split("fancy_env/", 1)[-1] if "fancy_env/" in keep else Path(keep).name
    return f"{name} ({'fancy_env/' if 'fancy_env/' in path else ''}{keep})"


def read_loopwatch(profile: Path) -> dict[str, Any]:
    path = Path(f"{profile}.loopwatch.json")
    return json.loads(path.read_text()) if path.exists() else {}


def print_profile(profile: dict[str, Any]) -> None:
    watch = profile.get("loopwatch") or {}
    if watch:
        busy, cpu = watch["busy_seconds"], watch.get("cpu_seconds", 0.0)
        print(
            f"  - loop: {watch['callbacks']:,} callbacks in {watch['seconds']:.1f} s, inside "
            f"them {busy:.1f} s ({cpu:.1f} s on the CPU, the rest blocked or waiting for a "
            "core); callbacks over "
            + ", ".join(f"{k} ms: {v}" for k, v in watch["over_ms"].items())
        )
        for item in watch["by_code"][:8]:
            text = (
                f"{item['total_ms']:.0f} ms in {item['count']} callbacks "
                f"(max {item['max_ms']:.1f} ms, mean {item['mean_ms']:.2f}, CPU "
                f"{item.get('cpu_ms', 0) / item['count']:.2f}): {item['code']}"
            )
            print("    - " + textwrap.shorten(text, 200))
    spy = profile.get("py-spy") or {}
    if spy.get("samples"):
        n = spy["samples"]
        print(f"  - py-spy, {n} samples of the loop's thread ({spy['other_threads']} of "
              "others); own time: " + "; ".join(
            f"{k} {100 * v / n:.0f}%" for k, v in spy["own"][:8]
        ))  # fmt: skip
        print("  - py-spy, inclusive (fancy_env): " + "; ".join(
            f"{k} {100 * v / n:.0f}%" for k, v in spy["inclusive"][:8]
        ))  # fmt: skip
