"""Pure rules for fetched checkouts: path confinement and submodule URLs (no I/O).

The checkout (`fancy_env.builder.checkout`) walks the tree and asks these functions; they only
look at strings, so they are tested as parameter tables.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

# repo2docker's own configuration directories (it reads them on the host)
CONFIG_DIRS = ("binder", ".binder")

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class CheckoutError(Exception):
    """A checkout that must not be built; `reason` is shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_inside(root: str, path: str) -> bool:
    """True if the absolute, normalised `path` is `root` or below it."""
    root = posixpath.normpath(root)
    path = posixpath.normpath(path)
    return path == root or path.startswith(root.rstrip("/") + "/")


def escaping_reason(root: str, rel: str, resolved: str) -> str | None:
    """The refusal for the tree entry `rel` whose links resolve to `resolved`, or None."""
    if is_inside(root, resolved):
        return None
    return (
        f"the repository's {rel!r} is a symbolic link that leads outside the repository; "
        "links out of the checkout are not allowed"
    )


@dataclass(frozen=True)
class Submodule:
    name: str
    path: str
    url: str


def parse_gitmodules(listing: str) -> list[Submodule]:
    """`git config --file .gitmodules --null --list` output -> submodules with path and url."""
    fields: dict[str, dict[str, str]] = {}
    for entry in listing.split("\0"):
        key, _, value = entry.partition("\n")
        if not key.startswith("submodule."):
            continue
        name, _, attr = key[len("submodule.") :].rpartition(".")
        if name and attr in ("path", "url"):
            fields.setdefault(name, {})[attr] = value
    return [
        Submodule(name, f["path"], f["url"])
        for name, f in fields.items()
        if "path" in f and "url" in f
    ]


def resolve_submodule_url(parent: str, url: str) -> str:
    """A submodule URL, relative ones (`./x`, `../x`) resolved against the parent's URL.

    Follows Git's rule: the parent URL is the base "directory"; each leading `../` removes
    one path component of it. Raises CheckoutError for a relative URL that climbs above the
    parent's host, or a URL that is neither relative nor absolute with a scheme.
    """
    if not url.startswith(("./", "../")):
        return url
    scheme_host, _, path = parent.partition("://")
    host, _, base = path.partition("/")
    parts = [p for p in base.rstrip("/").split("/") if p]
    rest = url
    while True:
        if rest.startswith("./"):
            rest = rest[2:]
        elif rest.startswith("../"):
            if not parts:
                raise CheckoutError(f"submodule URL {url!r} climbs above the repository's host")
            parts.pop()
            rest = rest[3:]
        else:
            break
    joined = "/".join([*parts, rest]) if rest else "/".join(parts)
    return f"{scheme_host}://{host}/{joined}"


def check_submodule_path(path: str) -> str | None:
    """The refusal for a submodule path that is absolute or climbs out, or None."""
    norm = posixpath.normpath(path)
    if not path or path.startswith("/") or norm == ".." or norm.startswith("../"):
        return f"submodule path {path!r} is not inside the repository"
    if norm == ".git" or norm.startswith(".git/"):
        return f"submodule path {path!r} is inside .git"
    return None


def redirect_reason(git_output: str) -> str | None:
    """The refusal when git's error says the server answered with a redirect, or None."""
    m = re.search(r"returned error: (30[12378])", git_output)
    if m or "redirect" in git_output.lower():
        code = f" (HTTP {m.group(1)})" if m else ""
        return (
            f"the repository redirected{code} while it was being cloned; redirects are not "
            "followed at clone time (give the final URL)"
        )
    return None


# ---- the fetch's git command lines (one machine and build pods run exactly these) ----------

# the environment git runs in (over the caller's, minus every inherited GIT_* variable)
GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/true",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_PROTOCOL_FROM_USER": "0",
    "GIT_ALLOW_PROTOCOL": "https:http",
    "LC_ALL": "C",
}
GIT_CONFIG = ["-c", "http.followRedirects=false", "-c", "credential.helper="]
# a fetch also refuses every transport but http(s) and never runs a hook
FETCH_CONFIG = [
    *GIT_CONFIG, "-c", "protocol.allow=never", "-c", "protocol.http.allow=always",
    "-c", "protocol.https.allow=always", "-c", "core.hooksPath=/dev/null",
]  # fmt: skip


@dataclass(frozen=True)
class GitStep:
    """One git command of a fetch: `argv` (from "git"), run in `cwd` (relative to the
    fetch's parent directory); `what` names it in a refusal."""

    argv: tuple[str, ...]
    cwd: str
    what: str


def fetch_argv(args: list[str]) -> list[str]:
    """`git` with the fetch config, then `args`."""
    return ["git", *FETCH_CONFIG, *args]


def fetch_env(home: str) -> dict[str, str]:
    """The variables a fetch's git gets on top of its (GIT_*-free) environment."""
    return {**GIT_ENV, "HOME": home, "XDG_CONFIG_HOME": home}


def clone_steps(url: str, commit: str, name: str, pin: list[str]) -> list[GitStep]:
    """Clone `url` into the directory `name` (address pinned with `pin`, no submodules, no
    checkout), then check out `commit` detached."""
    clone = [*pin, "clone", "-q", "--no-checkout", "--no-recurse-submodules", "--", url, name]
    checkout = ["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit, "--"]
    return [
        GitStep(tuple(fetch_argv(clone)), ".", f"cloning {url}"),
        GitStep(tuple(fetch_argv(checkout)), name, f"checking out commit {commit[:12]}"),
    ]


def git_failure(what: str, code: int, output: str) -> str:
    """The refusal for a git step that exited with `code`: a redirect, or its last line."""
    reason = redirect_reason(output)
    if reason:
        return reason
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return f"{what} failed ({lines[-1][:200] if lines else f'exit {code}'})"
