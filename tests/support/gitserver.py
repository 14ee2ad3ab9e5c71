"""Real Git remotes on loopback.

Bare repositories under a temporary root, served over HTTP on 127.0.0.1 by a static file
server (Git's "dumb" HTTP protocol: `git ls-remote` and `git clone` work unchanged). Every
commit runs `git update-server-info` so the served refs are current.

`GitServer(root, redirect_to="http://127.0.0.1:PORT")` answers the first `info/refs` request
normally (the service's ref lookup) and every later request with a 302 to that base URL (a
clone-time redirect). `GitServer(root, tokens=("t1", "t2"))` is a private forge: every request
needs HTTP Basic auth whose password is one of the tokens (any user name), else 401 with
`WWW-Authenticate`. Every server writes one line per request to `requests.log` in its root
(`<path> auth=yes|no <status>`: whether an Authorization header came, never its value).
`GitRepo.symlink` and `GitRepo.gitlink` commit symbolic links and submodule entries.
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

    def symlink(self, path: str, target: str, message: str = "link") -> str:
        """Commit a symbolic link `path -> target`; return the new commit sha."""
        link = self.work / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
        return self.commit({}, message)

    def gitlink(self, path: str, url: str, commit: str = "1" * 40, name: str = "") -> str:
        """Commit a submodule entry (`.gitmodules` + a gitlink at `path`); return the sha."""
        name = name or path
        git("config", "-f", ".gitmodules", f"submodule.{name}.path", path, cwd=self.work)
        git("config", "-f", ".gitmodules", f"submodule.{name}.url", url, cwd=self.work)
        git("update-index", "--add", "--cacheinfo", f"160000,{commit},{path}", cwd=self.work)
        git("add", ".gitmodules", cwd=self.work)  # not `add -A`: it would drop the gitlink
        git("commit", "-q", "-m", f"submodule {path}", cwd=self.work)
        git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=self.work)
        git("update-server-info", cwd=self.bare)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tag(self, name: str) -> None:
        git("tag", name, cwd=self.work)
        git("push", "-q", "origin", name, cwd=self.work)
        git("update-server-info", cwd=self.bare)


REDIRECTING_SERVER = """
import functools, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
port, root, target = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen = {"refs": 0}
class Handler(SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/":
            return super().do_GET()
        first = "/info/refs" in self.path and seen["refs"] == 0
        if "/info/refs" in self.path:
            seen["refs"] += 1
        if first:
            return super().do_GET()
        self.send_response(302)
        self.send_header("Location", target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()
handler = functools.partial(Handler, directory=root)
ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()
"""


AUTH_SERVER = """
import base64, functools, os, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
port, root, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
tokens = {t for t in os.environ.get("GIT_TEST_TOKENS", "").split(",") if t}
class Handler(SimpleHTTPRequestHandler):
    def _allowed(self):
        header = self.headers.get("Authorization", "")
        if not tokens:
            return True
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return bool(user) and password in tokens
    def _note(self, status):
        auth = "yes" if self.headers.get("Authorization") else "no"
        with open(log, "a") as f:
            f.write(f"{self.path} auth={auth} {status}\\n")
    def do_GET(self):
        if self.path != "/" and not self._allowed():
            self._note(401)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test forge"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._note(200)
        return super().do_GET()
    def log_message(self, *args):
        pass
handler = functools.partial(Handler, directory=root)
ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()
"""


@dataclass
class GitServer:
    root: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    repos: dict[str, GitRepo] = field(default_factory=dict)
    redirect_to: str = ""
    tokens: tuple[str, ...] = ()  # non-empty: a private forge (Basic auth, password = token)

    @property
    def request_log(self) -> Path:
        return self.root / "requests.log"

    def requests(self) -> list[str]:
        try:
            return self.request_log.read_text().splitlines()
        except FileNotFoundError:
            return []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GitServer:
        (self.root / "srv").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        srv = str(self.root / "srv")
        env = dict(os.environ)
        if self.redirect_to:
            cmd = ["-c", REDIRECTING_SERVER, str(self.port), srv, self.redirect_to]
        else:  # a private forge with tokens; without, a public one that notes its requests
            cmd = ["-c", AUTH_SERVER, str(self.port), srv, str(self.request_log)]
            env["GIT_TEST_TOKENS"] = ",".join(self.tokens)
        self.proc = subprocess.Popen(
            [sys.executable, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
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
