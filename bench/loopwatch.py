"""Run a module with every asyncio callback timed: where the event loop's time goes.

    python3 bench/loopwatch.py OUT.json -m MODULE [ARGS...]

bench_eventloop.py --profile starts the service this way. It wraps asyncio's `Handle._run`
(every callback the loop runs: task steps, I/O callbacks, timers) with a clock, and groups
the time by the code that ran. For a task step that code is named by where the task resumed
and where it suspended next, its innermost frames outside asyncio itself, e.g.
`EventsHandler._replay: fancy_env/builder/handlers.py:351 -> fancy_env/builder/handlers.py:347`:
the lines between the two ran in that callback. Other callbacks are named by their function.

SIGUSR1 forgets what was recorded (the bench sends it when the load starts); SIGUSR2 writes
OUT.json and stops recording (the bench sends it when the load ends); at exit OUT.json is
written too unless SIGUSR2 came. OUT.json holds `callbacks`; `busy_seconds` (time inside
callbacks); `cpu_seconds` (CPU time of the loop's thread inside them: busy minus CPU is
time a callback waited, on blocking I/O or for a core); `seconds` (recorded wall time);
`over_ms` (how many callbacks took over 5, 20, 50 and 200 ms); `by_code` (the 40 codes with
the most time: count, total, mean, max and CPU ms); `slowest` (the 30 longest callbacks,
with when they ran). The clocks cost a few microseconds per callback, the frame walk a few
more: profiled figures are not the plain ones.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import runpy
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

THRESHOLDS_MS = (5, 20, 50, 200)
ASYNCIO_DIR = str(Path(asyncio.__file__).parent)


def _short(filename: str) -> str:
    for marker in ("fancy_env/", "site-packages/"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return f"fancy_env/{tail}" if marker == "fancy_env/" else tail
    return Path(filename).name


def _where(coro: Any) -> str:
    """The innermost frame of an await chain that is not asyncio's own."""
    found = None
    for _ in range(64):
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        if not frame.f_code.co_filename.startswith(ASYNCIO_DIR):
            found = frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    if found is None:
        return "(done)"
    return f"{_short(found.f_code.co_filename)}:{found.f_lineno}"


def _name(fn: Any) -> str:
    fn = getattr(fn, "func", fn)  # functools.partial
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


class Watch:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.recording = True
        self.reset()

    def reset(self, *_: Any) -> None:
        self.started = time.perf_counter()
        self.count = 0
        self.busy = 0.0
        self.cpu = 0.0
        self.over = dict.fromkeys(THRESHOLDS_MS, 0)
        self.codes: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
        self.slowest: list[tuple[float, str, float]] = []

    def record(
        self, handle: asyncio.Handle, before: str | None, seconds: float, cpu: float
    ) -> None:
        callback = handle._callback  # type: ignore[attr-defined]
        task = getattr(callback, "__self__", None)
        if isinstance(task, asyncio.Task):
            code = f"{task.get_coro().__qualname__}: {before} -> {_where(task.get_coro())}"
        else:
            args = handle._args  # type: ignore[attr-defined]
            first = f"({_name(args[0])})" if args and callable(args[0]) else ""
            code = _name(callback) + first
        self.count += 1
        self.busy += seconds
        self.cpu += cpu
        entry = self.codes[code]
        entry[0] += 1
        entry[1] += seconds
        entry[2] = max(entry[2], seconds)
        entry[3] += cpu
        ms = seconds * 1000
        for limit in THRESHOLDS_MS:
            if ms > limit:
                self.over[limit] += 1
        if ms > 5:
            self.slowest.append((ms, code, time.perf_counter() - self.started))
            self.slowest = sorted(self.slowest, reverse=True)[:30]

    def dump(self, *_: Any) -> None:
        if not self.recording:
            return
        self.recording = False
        by_code = sorted(self.codes.items(), key=lambda kv: -kv[1][1])[:40]
        self.out.write_text(json.dumps({
            "callbacks": self.count,
            "busy_seconds": self.busy,
            "cpu_seconds": self.cpu,
            "seconds": time.perf_counter() - self.started,
            "over_ms": {str(k): v for k, v in self.over.items()},
            "by_code": [
                {"code": code, "count": int(n), "total_ms": total * 1000,
                 "mean_ms": total * 1000 / n, "max_ms": top * 1000, "cpu_ms": cpu * 1000}
                for code, (n, total, top, cpu) in by_code
            ],
            "slowest": [{"ms": ms, "code": code, "at": at} for ms, code, at in self.slowest],
        }, indent=1))  # fmt: skip


def install(watch: Watch) -> None:
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        if not watch.recording:
            return run(handle)
        task = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
        before = _where(task.get_coro()) if isinstance(task, asyncio.Task) else None
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return run(handle)
        finally:
            watch.record(handle, before, time.perf_counter() - t0, time.thread_time() - c0)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, watch.reset)
    signal.signal(signal.SIGUSR2, watch.dump)
    atexit.register(watch.dump)


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        sys.exit(__doc__)
    install(Watch(Path(sys.argv[1])))
    module = sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
