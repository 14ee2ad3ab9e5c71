"""Pure rules for users' forge credentials (private repositories): no I/O.

A credential belongs to one user and one *origin* (`scheme://host[:port]`, the form the
service's normalised repository URLs start with). It is used for that exact origin only:
the ref lookup's `Authorization` header and the clone's `http.<origin>/.extraHeader`, never
the URL, never a command line. Tested as parameter tables (tests/unit/test_forge_auth.py).
"""

from __future__ import annotations

import base64
import dataclasses
import re
from urllib.parse import urlsplit

from ..errors import FancyError
from ..repos import RepoError, RepoPolicy, parse_repo

#: what a forge token may look like: GitHub (ghp_…, github_pat_…), GitLab (glpat-…), Gitea
#: (hex), base64-ish API keys; no spaces, no control characters, no ':'
TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{8,512}")
USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
#: the HTTP Basic user name sent when none is given: GitHub documents it for tokens,
#: GitLab and Gitea accept any non-empty user name with a personal access token
DEFAULT_USERNAME = "x-access-token"
REDACTED = "[credential]"


class CredentialError(FancyError, ValueError):
    """Bad credential input: `field` names the field, `message` what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(400, message, field)


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a normalised repository URL (default ports dropped, as
    `repos.normalise_url` writes them)."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def parse_host(raw: object, policy: RepoPolicy) -> str:
    """The origin a user stores a credential for: `github.com`, `https://gitlab.example.org`,
    `http://127.0.0.1:8080` (http only where the admin allows http). Refused (field `host`)
    when the build service would not fetch from that host at all."""
    if not isinstance(raw, str) or not raw.strip():
        raise CredentialError("host", "is required: a Git host such as github.com")
    text = raw.strip().rstrip("/")
    if len(text) > 300:
        raise CredentialError("host", "is longer than 300 characters")
    url = text if "://" in text else f"https://{text}"
    parts = urlsplit(url)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise CredentialError("host", "must be a host name (and port), without path or user")
    unpatterned = dataclasses.replace(policy, allow_patterns=(), deny_patterns=())
    try:
        spec = parse_repo(f"{url}/repository", policy=unpatterned)
    except RepoError as e:
        raise CredentialError(
            "host", f"the build service does not fetch from it: {e.reason}"
        ) from None
    return origin_of(spec.url)


def check_token(raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        raise CredentialError("token", "is required")
    if not TOKEN.fullmatch(raw):
        raise CredentialError(
            "token",
            "must be 8 to 512 characters of letters, digits and . _ ~ + / = - (no spaces)",
        )
    return raw


def check_username(raw: object) -> str:
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str) or not USERNAME.fullmatch(raw):
        raise CredentialError(
            "username", "must be 1 to 128 letters, digits or . _ @ + - (or left empty)"
        )
    return raw


def check_count(stored: int, replacing: bool, limit: int) -> None:
    """Refuse a new host beyond the per-user limit (0 = no limit); replacing is always fine."""
    if limit > 0 and not replacing and stored >= limit:
        raise CredentialError(
            "host",
            f"you already store {stored} credentials, the most allowed "
            f"(FancyEnvCredentials.max_per_user = {limit}); delete one first",
        )


def host_label(origin: str) -> str:
    """What the pages show: the host (and port), with the scheme only when it is http."""
    return origin[len("https://") :] if origin.startswith("https://") else origin


@dataclasses.dataclass(frozen=True)
class GitAuth:
    """One user's credential for one origin, as a build uses it (never printed)."""

    origin: str
    token: str = dataclasses.field(repr=False)
    username: str = dataclasses.field(default="", repr=False)

    def applies_to(self, url: str) -> bool:
        """Only the exact scheme, host and port the credential was stored for."""
        return origin_of(url) == self.origin

    @property
    def header(self) -> str:
        pair = f"{self.username or DEFAULT_USERNAME}:{self.token}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def git_env(self) -> dict[str, str]:
        """Environment variables giving git the header for this origin only (git >= 2.31
        reads them as command-line config; nothing is written into the clone's config)."""
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{self.origin}/.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: {self.header}",
        }

    def scrub(self, text: str) -> str:
        """`text` with the token and its header value replaced (defence in depth)."""
        for secret in (self.token, self.header, self.header.split(" ", 1)[1]):
            text = text.replace(secret, REDACTED)
        return text


def git_env_for(auth: GitAuth | None, url: str) -> dict[str, str]:
    """The credential's git variables when it applies to `url`, else none."""
    return auth.git_env() if auth is not None and auth.applies_to(url) else {}


def needs_credential_message(origin: str, page_url: str) -> str:
    host = host_label(origin)
    return (
        f"this repository needs a credential for {host}: add one at {page_url} "
        "(a read-only access token of your own account on that host)"
    )


def executor_refusal(executor: str) -> str:
    """Why a private repository is not built by an executor that cannot take a credential."""
    return (
        f"this repository needs a credential, and private repositories are not built with "
        f"this service's {executor} executor (a build pod would have to hold your token); "
        "ask your admin, or build it on a service with the docker executor"
    )
