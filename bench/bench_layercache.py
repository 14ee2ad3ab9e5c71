"""Benchmark: a content-only commit on a fresh engine (issue 11, the layer cache), one table.

    python bench/bench_layercache.py [--quick]      (--quick runs the same: one sample each)

A repository whose environment step takes 60 s (`RUN sleep 60`, leaving a 50 MB layer like an
installed environment) before the step that copies its content, FROM the single-user image
pushed to the shared registry under a name of the bench's own. The second engine
(scripts/docker2.sh) is the fresh node: it holds the single-user image (as a hub node does,
since it runs servers from it; pulled untimed at the start) and nothing of the repository.
The first engine builds commit 1 and pushes it; then, for content-only commits (each row a
new commit, timed from `POST api/builds` to the `built` event, push included):

- warm engine: the first engine builds the next commit (its own layers, the usual case);
- pull: the second engine only `docker pull`s that image (then it is removed again);
- fresh engine with the registry cache: the second engine builds the next commit with the
  layer cache on (it pulls the previous image first);
- fresh engine without the cache: the second engine, the repository's images removed again,
  builds the next commit with `layer_cache = False`.

Goal: with the cache <= pull + 2x warm, and >= 4x faster than without. A missed goal is
reported; a build that fails, or a cached build whose environment step did not come from
the cache (or an uncached one whose did), exits 1. The bench removes its images from both
engines and the registry.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.builder import BuilderProcess  # noqa: E402
from tests.support.docker2 import (  # noqa: E402
    FIRST_ENGINE,
    docker,
    docker2_host,
    docker_config,
    registry_delete,
    remove_images,
)
from tests.support.gitserver import GitRepo, GitServer  # noqa: E402
from tests.support.registry import REGISTRY  # noqa: E402

SINGLEUSER = "fancy-env/singleuser:latest"
BASE = f"{REGISTRY}/fancy-env-bench/lc-base:1"
STEP_SECONDS = 60
ENV_LAYER_MB = 50  # what the environment step leaves in its layer (an installed environment)
DOCKERFILE = (
    "FROM {base}\n"
    "RUN echo environment-step && sleep {seconds}"
    f" && head -c {ENV_LAYER_MB}M /dev/urandom > /tmp/environment.bin\n"
    "COPY . /srv/content/\n"
)


class Bench:
    def __init__(self, work: Path, engine2: str) -> None:
        self.work = work
        self.engine2 = engine2
        self.config = docker_config(work / "docker-config")
        self.images: list[str] = []
        self.commits = 0

    def builder(self, host: str, cache: bool) -> BuilderProcess:
        config = (
            'c.DockerExecutor.build_network = "none"\n'
            f"c.DockerExecutor.layer_cache_images = [{BASE!r}]\n"
            f"c.DockerExecutor.layer_cache = {cache!r}\n"
        )
        env = {"DOCKER_HOST": host} if host else {}
        return BuilderProcess(self.work / "builder", executor="docker", config=config, env=env)

    def timed_build(self, repo: GitRepo, host: str, cache: bool) -> tuple[float, list[str]]:
        """(seconds from POST to built, log lines) of a new content-only commit."""
        self.commits += 1
        repo.commit({"README.md": f"content {self.commits}\n"}, f"content {self.commits}")
        svc = self.builder(host, cache).start()
        try:
            t0 = time.perf_counter()
            r = svc.post("bench", repo.url)
            assert r.status_code in (200, 202), r.text
            events = svc.events(r.json()["id"], user="bench", timeout=900)
            elapsed = time.perf_counter() - t0
        finally:
            svc.stop()
        self.images.append(str(r.json()["image"]))
        messages = [str(e["message"]) for e in events]
        if events[-1]["phase"] != "built":
            raise AssertionError(f"build failed: {messages[-8:]}")
        return elapsed, messages

    def empty_engine2(self) -> None:
        remove_images(self.engine2, [*self.images, BASE])
        left = docker(self.engine2, "images", "-q")
        assert not left, f"the second engine still holds images: {left}"

    def timed_pull(self, image: str) -> float:
        t0 = time.perf_counter()
        docker(self.engine2, "pull", "-q", image, config=self.config, timeout=900)
        return time.perf_counter() - t0

    def cleanup(self) -> None:
        remove_images(self.engine2, [*self.images, BASE])
        docker(FIRST_ENGINE, "image", "rm", *self.images, BASE, check=False)
        for image in [*self.images, BASE]:
            registry_delete(image)


def env_step_cached(messages: list[str]) -> bool:
    """Whether the `RUN ... sleep` step came from the layer cache (classic builder log)."""
    first = next(i for i, m in enumerate(messages) if "RUN echo environment-step" in m)
    last = next(i for i, m in enumerate(messages) if i > first and "COPY . /srv/content/" in m)
    return any("Using cache" in m for m in messages[first:last])


def run(bench: Bench, git: GitServer) -> dict[str, Any]:
    docker(FIRST_ENGINE, "tag", SINGLEUSER, BASE)
    docker(FIRST_ENGINE, "push", "-q", BASE, config=bench.config, timeout=900)
    dockerfile = DOCKERFILE.format(base=BASE, seconds=STEP_SECONDS)
    repo = git.create("layercache-bench", {"Dockerfile": dockerfile, "README.md": "content 0\n"})
    bench.empty_engine2()
    # a hub node holds the single-user image (it runs servers from it): untimed
    docker(bench.engine2, "pull", "-q", BASE, config=bench.config, timeout=900)
    first, _ = bench.timed_build(repo, FIRST_ENGINE, cache=True)
    warm, log = bench.timed_build(repo, FIRST_ENGINE, cache=True)
    assert env_step_cached(log), "warm engine: the environment step did not come from the cache"
    pull = bench.timed_pull(bench.images[-1])
    # removing the repository's images (the base stays) drops the environment step's layer
    remove_images(bench.engine2, bench.images)
    cached, log = bench.timed_build(repo, bench.engine2, cache=True)
    assert env_step_cached(log), "fresh engine: the environment step did not use the cache"
    remove_images(bench.engine2, bench.images)
    uncached, log = bench.timed_build(repo, bench.engine2, cache=False)
    assert not env_step_cached(log), "layer_cache off: the environment step came from a cache"
    return {"first": first, "warm": warm, "pull": pull, "cached": cached, "uncached": uncached}


def report(t: dict[str, Any], quick: bool) -> None:
    limit = t["pull"] + 2 * t["warm"]
    speedup = t["uncached"] / t["cached"]
    ok1, ok2 = t["cached"] <= limit, speedup >= 4
    rows = [
        ("first build, engine 1 (commit 1, push)", t["first"], "-", ""),
        ("warm engine 1, content-only commit", t["warm"], "-", ""),
        ("engine 2: `docker pull` of the previous image", t["pull"], "-", ""),
        ("engine 2 with the registry cache", t["cached"],
         f"<= pull + 2x warm = {limit:.1f} s", "PASS" if ok1 else "MISS"),
        ("engine 2 without the cache (layer_cache off)", t["uncached"],
         f"cache {speedup:.1f}x faster (goal >= 4x)", "PASS" if ok2 else "MISS"),
    ]  # fmt: skip
    print(f"\n## Content-only commit on a fresh engine ({'quick, ' if quick else ''}"
          f"environment step {STEP_SECONDS} s, time to `built`)\n")  # fmt: skip
    print("| row | seconds | goal | result |")
    print("| --- | --- | --- | --- |")
    for name, seconds, goal, result in rows:
        print(f"| {name} | {seconds:.1f} | {goal} | {result} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the same run (one sample each)")
    args = parser.parse_args()
    engine2 = docker2_host()
    if engine2 is None:
        print("no second Docker engine: run scripts/setup.sh --test", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-layercache-") as tmp:
        work = Path(tmp)
        bench = Bench(work, engine2)
        git = GitServer(work / "git").start()
        try:
            timings = run(bench, git)
        finally:
            git.stop()
            bench.cleanup()
    report(timings, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
