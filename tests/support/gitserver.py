"""Real Git remotes on loopback.

Bare repositories under a temporary root, served over HTTP on 127.0.0.1 by a static file
server (Git's "dumb" HTTP protocol: `git ls-remote` and `git clone` work unchanged). Every
commit runs `git update-server-info` so the served refs are current.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .net import free_port, wait_for

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


@dataclass
class GitRepo:
    name: str
    bare: Path
    work: Path
    url: str

    def commit(self, files: dict[str, str], message: str = "update", branch: str = "main") -> str:
        """Write files, commit, push to the served bare repo; return the new commit sha."""
        for rel, text in files.items():
            path = self.work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        git("update-server-info", cwd=self.bare)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tag(self, name: str) -> None:
        git("tag", name, cwd=self.work)
        git("push", "-q", "origin", name, cwd=self.work)
        git("update-server-info", cwd=self.bare)


@dataclass
class GitServer:
    root: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    repos: dict[str, GitRepo] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GitServer:
        (self.root / "srv").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(self.root / "srv"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import urllib.request

        wait_for(
            lambda: urllib.request.urlopen(self.base_url + "/", timeout=1).status == 200,
            what="git http server",
        )
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def create(self, name: str, files: dict[str, str] | None = None) -> GitRepo:
        """A new served repository `name.git` with one commit on `main` (HEAD)."""
        bare = self.root / "srv" / f"{name}.git"
        work = self.root / "work" / name
        git("init", "-q", "--bare", "-b", "main", str(bare))
        work.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=work)
        git("remote", "add", "origin", str(bare), cwd=work)
        repo = GitRepo(name=name, bare=bare, work=work, url=f"{self.base_url}/{name}.git")
        repo.commit(files or {"README.md": f"# {name}\n"}, message="initial")
        self.repos[name] = repo
        return repo


def dockerfile_repo_files(base_image: str, marker: str = "v1") -> dict[str, str]:
    """Files of a repo2docker-buildable repository: a Dockerfile FROM the local image."""
    return {
        "Dockerfile": f"FROM {base_image}\nRUN echo {marker} > /tmp/fancy-env-marker\n",
        "README.md": f"test environment {marker}\n",
    }
