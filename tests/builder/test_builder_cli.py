"""`fancy-env build`: against a running service (token), and locally with real repo2docker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.builder import ROOT, BuilderProcess
from tests.support.gitserver import GitServer, dockerfile_repo_files

TOKEN = "cli-test-token"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fancy_env.builder.cli_build", *args],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip


def test_cli_against_service(tmp_path: Path, git_server: GitServer) -> None:
    svc = BuilderProcess(tmp_path / "b", env={"JUPYTERHUB_API_TOKEN": TOKEN})
    svc.start()
    try:
        repo = git_server.create("cli")
        hub = f"http://127.0.0.1:{svc.port}/"
        out = cli(repo.url, "--hub", hub, "--token", TOKEN)
        assert out.returncode == 0, out.stderr
        image = out.stdout.strip().splitlines()[-1]
        assert image.startswith("127.0.0.1:5000/fancy-env-test/")
        assert image.endswith(":" + repo.commit({"x": "1"}, message="next")) is False
        assert "building:" in out.stderr and "built:" in out.stderr
        again = cli(repo.url, "--hub", hub, env={"JUPYTERHUB_API_TOKEN": TOKEN})
        assert again.returncode == 0 and again.stdout.strip() != image  # new commit, new image
        failed = cli(git_server.create("will-fail").url, "--hub", hub, "--token", TOKEN)
        assert failed.returncode == 1 and "fake build failed" in failed.stderr
        refused = cli("ssh://example.com/x", "--hub", hub, "--token", TOKEN)
        assert refused.returncode == 2 and "scheme 'ssh:' is not allowed" in refused.stderr
        denied = cli(repo.url, "--hub", hub, "--token", "wrong")
        assert denied.returncode == 2 and "503" in denied.stderr  # no hub to ask here
    finally:
        svc.stop()


@pytest.mark.docker
def test_cli_local_build(git_server: GitServer, docker_engine: str) -> None:
    repo = git_server.create("clilocal", dockerfile_repo_files(docker_engine, "cli"))
    out = cli(repo.url, "--image-prefix", "fancy-env-clitest/")
    assert out.returncode == 0, out.stderr
    image = out.stdout.strip().splitlines()[-1]
    try:
        assert image.startswith("fancy-env-clitest/")
        inspect = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
        assert inspect.returncode == 0
        again = cli(repo.url, "--image-prefix", "fancy-env-clitest/")
        assert again.returncode == 0 and again.stdout.strip() == image
        assert "already built" in again.stderr
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
