"""Every refused repository input of issue 3 item 2: (repo, ref, subdir, field, reason part).

Shared by the pure table (tests/unit/test_repos.py) and the HTTP table against the running
service (tests/builder/test_builder_refusals.py), which must answer each with 400 + reason.
Policy for both: http allowed for 127.0.0.1 only, no private hosts allowed, deny list
`https://github.com/evil/.*`, allow list github.com, gitlab.com, example.com, 127.0.0.1.
"""

from __future__ import annotations

ALLOWED_HTTP_HOSTS = frozenset({"127.0.0.1"})
DENY = (r"https://github\.com/evil/.*",)
ALLOW = (
    r"https://(github\.com|gitlab\.com|example\.com|127\.0\.0\.1|\[::1\]|localhost)/.*",
    r"https://(10\.0\.0\.1|192\.168\.1\.1|172\.17\.0\.1|169\.254\.169\.254|224\.0\.0\.1)/.*",
    r"https://(0\.0\.0\.0|\[fe80::1\]|\[::ffff:127\.0\.0\.1\]|100\.64\.0\.1)/.*",
    r"https://(2130706433|0x7f000001|127\.1)/.*",
    r"http://127\.0\.0\.1(:\d+)?/.*",
)

REFUSED: list[tuple[str, str, str, str, str]] = [
    # missing / malformed
    ("", "", "", "repo", "is required"),
    ("https://example.com", "", "", "repo", "no repository path"),
    ("example.com/", "", "", "repo", "must be an https URL"),
    ("gh:owner", "", "", "repo", "gh: takes owner/repo"),
    ("gl:project", "", "", "repo", "gl: takes group/project"),
    ("https://example.com:99999/a/b", "", "", "repo", "port"),
    ("https://example.com/a/b?x=1", "", "", "repo", "query strings"),
    ("https://example.com/a/b#frag", "", "", "repo", "fragments"),
    ("https://example.com/a/../b", "", "", "repo", "'..'"),
    ("https://exa_mple.com/a/b", "", "", "repo", "not a valid host name"),
    ("https://example.com/" + "a" * 2100, "", "", "repo", "longer than"),
    # schemes and git transports
    ("http://example.com/a/b", "", "", "repo", "http is not allowed"),
    ("ftp://example.com/a/b", "", "", "repo", "scheme 'ftp:' is not allowed"),
    ("git://example.com/a/b", "", "", "repo", "scheme 'git:' is not allowed"),
    ("ssh://example.com/a/b", "", "", "repo", "scheme 'ssh:' is not allowed"),
    ("git+ssh://example.com/a/b", "", "", "repo", "scheme 'git+ssh:' is not allowed"),
    ("git@github.com:owner/repo.git", "", "", "repo", "ssh (user@host:path) is not allowed"),
    ("file:///etc/passwd", "", "", "repo", "file: URLs are not allowed"),
    ("FILE:///etc/passwd", "", "", "repo", "file: URLs are not allowed"),
    ("ext::sh%20-c%20id", "", "", "repo", "git transports like 'ext::'"),
    ("fd::17", "", "", "repo", "git transports like 'ext::'"),
    ("/srv/git/repo.git", "", "", "repo", "must be an https URL"),
    # credentials
    ("https://user:secret@example.com/a/b", "", "", "repo", "credentials"),
    ("https://token@example.com/a/b", "", "", "repo", "credentials"),
    # leading '-', control characters, whitespace
    ("-uhttps://example.com/a/b", "", "", "repo", "must not start with '-'"),
    ("--upload-pack=touch /tmp/x", "", "", "repo", "whitespace"),
    ("https://example.com/a b", "", "", "repo", "whitespace or control"),
    ("https://example.com/a/b\n", "", "", "repo", "whitespace or control"),
    ("https://example.com/a/b\x00", "", "", "repo", "whitespace or control"),
    ("https://example.com/a\tb", "", "", "repo", "whitespace or control"),
    ("https://example.com/a\x1b[31mb", "", "", "repo", "whitespace or control"),
    ("https://example.com/a/b", "-main", "", "ref", "must not start with '-'"),
    ("https://example.com/a/b", "--upload-pack=x", "", "ref", "must not start with '-'"),
    ("https://example.com/a/b", "main branch", "", "ref", "whitespace or control"),
    ("https://example.com/a/b", "main\x07", "", "ref", "whitespace or control"),
    ("https://example.com/a/b", "a..b", "", "ref", "branch, tag or commit"),
    ("https://example.com/a/b", "HEAD@{1}", "", "ref", "branch, tag or commit"),
    ("https://example.com/a/b", "x" * 300, "", "ref", "longer than"),
    ("https://example.com/a/b", "", "../etc", "subdir", "relative path"),
    ("https://example.com/a/b", "", "/etc", "subdir", "relative path"),
    ("https://example.com/a/b", "", "-x", "subdir", "must not start with '-'"),
    ("https://example.com/a/b", "", "a b", "subdir", "whitespace or control"),
    # hosts that are (or resolve to) non-public addresses
    ("https://127.0.0.1/a/b", "", "", "repo", "loopback"),
    ("https://[::1]/a/b", "", "", "repo", "loopback"),
    ("https://localhost/a/b", "", "", "repo", "loopback"),
    ("https://[::ffff:127.0.0.1]/a/b", "", "", "repo", "loopback"),
    ("https://10.0.0.1/a/b", "", "", "repo", "private"),
    ("https://192.168.1.1/a/b", "", "", "repo", "private"),
    ("https://172.16.0.1/a/b", "", "", "repo", "private"),
    ("https://100.64.0.1/a/b", "", "", "repo", "private"),
    ("https://169.254.169.254/latest/meta-data", "", "", "repo", "link-local"),
    ("https://[fe80::1]/a/b", "", "", "repo", "link-local"),
    ("https://224.0.0.1/a/b", "", "", "repo", "multicast"),
    ("https://0.0.0.0/a/b", "", "", "repo", "unspecified"),
    # admin patterns
    ("https://github.com/evil/repo", "", "", "repo", "deny list"),
    ("gh:evil/repo", "", "", "repo", "deny list"),
    ("https://bitbucket.org/a/b", "", "", "repo", "allowed patterns"),
]

# Refused only when the host is resolved (at the edge, by the service): spellings of
# 127.0.0.1 that are host names to a URL parser but addresses to the resolver.
REFUSED_BY_RESOLUTION: list[tuple[str, str]] = [
    ("https://2130706433/a/b", "loopback"),
    ("https://0x7f000001/a/b", "loopback"),
    ("https://127.1/a/b", "loopback"),
]
