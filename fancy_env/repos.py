"""Repository input: parsing, normalisation and every refusal rule (pure, no I/O).

Accepted forms::

    https://host/path[.git]      any host (http only for hosts the admin allows)
    owner/repo, gh:owner/repo    GitHub
    gl:group/sub/project         GitLab

`parse_repo` returns a `RepoSpec` or raises `RepoError` naming the field and what is allowed.
Host resolution happens at the edge (the service resolves the host asynchronously) and the
resolved addresses go through `check_addresses`, built on the pure `classify_address`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import FancyError

MAX_REPO_LENGTH = 2048
MAX_REF_LENGTH = 255
MAX_SUBDIR_LENGTH = 1024

_SHORTHAND = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_GITLAB_PATH = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SCP_LIKE = re.compile(r"^[^/:]+@[^/:]+:")
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f\s]")
_REF_FORBIDDEN = re.compile(r"\.\.|@\{|[~^:?*\[\\]|//|/\.|\.lock(/|$)")
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


class RepoError(FancyError, ValueError):
    """A refused repository input: `field` is the input field, `reason` what is allowed."""

    def __init__(self, field: str, reason: str, status: int = 400) -> None:
        super().__init__(status, reason, field)

    @property
    def reason(self) -> str:
        return self.message


@dataclass(frozen=True)
class RepoPolicy:
    """What the admin allows (see the builder's traits of the same names)."""

    allowed_http_hosts: frozenset[str] = frozenset()
    allow_private_hosts: bool = False
    allowed_private_hosts: frozenset[str] = frozenset()
    allow_patterns: tuple[str, ...] = ()
    deny_patterns: tuple[str, ...] = ()

    def private_allowed(self, host: str, port: int | None) -> bool:
        return self.allow_private_hosts or _host_in(host, port, self.allowed_private_hosts)


@dataclass(frozen=True)
class RepoSpec:
    """A normalised repository request."""

    url: str
    host: str
    port: int | None
    ref: str = ""
    subdir: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        """What identifies the content (besides the commit)."""
        return f"{self.url}#{self.subdir}" if self.subdir else self.url


def _host_in(host: str, port: int | None, allowed: Iterable[str]) -> bool:
    """`host` or `host:port` is listed (or the list holds "*")."""
    return any(a in ("*", host) or (port is not None and a == f"{host}:{port}") for a in allowed)


def _check_text(field_name: str, value: str, max_length: int) -> None:
    if len(value) > max_length:
        raise RepoError(field_name, f"is longer than {max_length} characters")
    if _CONTROL_OR_SPACE.search(value):
        raise RepoError(field_name, "must not contain whitespace or control characters")
    if value.startswith("-"):
        raise RepoError(field_name, "must not start with '-'")


def expand_shorthand(repo: str) -> str:
    """`owner/repo`, `gh:owner/repo` -> GitHub; `gl:group/project` -> GitLab; else unchanged."""
    if repo.startswith("gh:"):
        rest = repo[3:]
        if not _SHORTHAND.fullmatch(rest):
            raise RepoError("repo", "gh: takes owner/repo (letters, digits, '.', '_', '-')")
        return f"https://github.com/{rest}"
    if repo.startswith("gl:"):
        rest = repo[3:]
        if not _GITLAB_PATH.fullmatch(rest):
            raise RepoError("repo", "gl: takes group/project (letters, digits, '.', '_', '-')")
        return f"https://gitlab.com/{rest}"
    if _SHORTHAND.fullmatch(repo) and not repo.startswith("."):
        return f"https://github.com/{repo}"
    return repo


def _check_scheme(repo: str) -> str:
    if "::" in repo.split("/", 1)[0]:
        raise RepoError("repo", "git transports like 'ext::' are not allowed; use an https URL")
    if "://" not in repo and _SCP_LIKE.match(repo):
        raise RepoError("repo", "ssh (user@host:path) is not allowed; use an https URL")
    m = _SCHEME.match(repo)
    if not m or not repo[m.end() :].startswith("//"):
        raise RepoError(
            "repo", "must be an https URL, owner/repo, gh:owner/repo or gl:group/project"
        )
    scheme = m.group(1).lower()
    if scheme not in ("https", "http"):
        raise RepoError("repo", f"scheme '{scheme}:' is not allowed; use https")
    return scheme


def _split_host(netloc_host: str | None) -> str:
    if not netloc_host:
        raise RepoError("repo", "URL has no host")
    host = netloc_host.lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise RepoError("repo", f"host {netloc_host!r} is not a valid host name") from None
    if not _HOST.fullmatch(host):
        raise RepoError("repo", f"host {netloc_host!r} is not a valid host name")
    return host


def normalise_url(repo: str, policy: RepoPolicy) -> tuple[str, str, int | None]:
    """Check an absolute URL; return (normalised url, host, port)."""
    scheme = _check_scheme(repo)
    parts = urlsplit(repo)
    if "@" in parts.netloc:
        raise RepoError("repo", "credentials in the URL are not allowed")
    if parts.query or parts.fragment or "?" in repo or "#" in repo:
        raise RepoError("repo", "query strings and fragments are not allowed in the URL")
    try:
        port = parts.port
    except ValueError:
        raise RepoError("repo", "the URL's port must be a number from 1 to 65535") from None
    host = _split_host(parts.hostname)
    default_port = 443 if scheme == "https" else 80
    if port == default_port:
        port = None
    if scheme == "http" and not _host_in(host, port, policy.allowed_http_hosts):
        raise RepoError("repo", "http is not allowed for this host; use https")
    path = parts.path.rstrip("/")
    if not path or path == "/":
        raise RepoError("repo", "URL has no repository path")
    if any(seg in (".", "..") for seg in path.split("/")):
        raise RepoError("repo", "'.' and '..' are not allowed in the repository path")
    hostport = f"[{host}]" if ":" in host else host
    if port is not None:
        hostport += f":{port}"
    return f"{scheme}://{hostport}{path}", host, port


def check_ref(ref: str) -> str:
    """A branch, tag or commit name ("" = the remote's HEAD)."""
    _check_text("ref", ref, MAX_REF_LENGTH)
    if ref and (_REF_FORBIDDEN.search(ref) or ref.endswith((".", "/")) or ref.startswith("/")):
        raise RepoError(
            "ref", "must be a branch, tag or commit name (no '..', '~', '^', ':', '?', '*', '[')"
        )
    return ref


def check_subdir(subdir: str) -> str:
    _check_text("subdir", subdir, MAX_SUBDIR_LENGTH)
    cleaned = subdir.strip("/")
    if subdir.startswith("/") or any(s in ("", ".", "..") for s in cleaned.split("/") if cleaned):
        raise RepoError("subdir", "must be a relative path inside the repository, without '..'")
    return cleaned


def check_patterns(url: str, policy: RepoPolicy) -> None:
    for pattern in policy.deny_patterns:
        if re.fullmatch(pattern, url):
            raise RepoError("repo", "this repository is not allowed by the admin's deny list")
    if policy.allow_patterns and not any(re.fullmatch(p, url) for p in policy.allow_patterns):
        raise RepoError("repo", "this repository does not match the admin's allowed patterns")


def parse_repo(
    repo: str, ref: str = "", subdir: str = "", policy: RepoPolicy | None = None
) -> RepoSpec:
    """Parse and check a repository request; raise RepoError with the reason."""
    policy = policy or RepoPolicy()
    if not isinstance(repo, str):
        raise RepoError("repo", "must be a string (an https URL, owner/repo, gh:… or gl:…)")
    if not repo:
        raise RepoError("repo", "is required (an https URL, owner/repo, gh:… or gl:…)")
    if not isinstance(ref, str) or not isinstance(subdir, str):
        raise RepoError("ref" if not isinstance(ref, str) else "subdir", "must be a string")
    _check_text("repo", repo, MAX_REPO_LENGTH)
    if repo.lower().startswith("file:"):
        raise RepoError("repo", "file: URLs are not allowed; use an https URL")
    url, host, port = normalise_url(expand_shorthand(repo), policy)
    ref = check_ref(ref)
    subdir = check_subdir(subdir)
    if not policy.private_allowed(host, port):
        try:
            kind = classify_address(host)
        except ValueError:
            kind = "loopback" if host == "localhost" or host.endswith(".localhost") else None
        if kind:
            raise RepoError("repo", f"host {host} is a {kind} address, which is not allowed")
    check_patterns(url, policy)
    return RepoSpec(url=url, host=host, port=port, ref=ref, subdir=subdir)


def classify_address(address: str) -> str | None:
    """The kind of a non-public IP address ("loopback", "private", ...) or None if public.

    Raises ValueError when `address` is not an IP address.
    """
    ip = ipaddress.ip_address(address.strip("[]"))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return "private"
    return None


def check_addresses(spec: RepoSpec, addresses: Iterable[str], policy: RepoPolicy) -> None:
    """Refuse a host that resolves to any non-public address, unless the admin allows it."""
    addresses = list(addresses)
    if not addresses:
        raise RepoError("repo", f"host {spec.host} does not resolve")
    if policy.private_allowed(spec.host, spec.port):
        return
    for address in addresses:
        kind = classify_address(address)
        if kind:
            raise RepoError(
                "repo", f"host {spec.host} resolves to a {kind} address, which is not allowed"
            )
