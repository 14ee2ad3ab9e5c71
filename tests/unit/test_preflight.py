"""Pure parts of `fancy-env up`: preflight verdicts, /proc/net/tcp parsing, config."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from fancy_env.up import (
    LABEL,
    LOOPBACK_REPOS,
    HubSettings,
    connect_host,
    default_profile_list,
    docker_problem,
    first_line,
    image_problem,
    parse_listening,
    port_problem,
    proxy_problem,
    render_hub_config,
    repo_patterns,
    running_problem,
    up_id_for,
)


@pytest.mark.parametrize(
    ("error", "expect_none", "in_message"),
    [
        (None, True, ""),
        (
            "Error while fetching server API version: ('Connection aborted.', FileNotFoundError)",
            False,
            "Connection aborted",
        ),
        ("first line\nsecond line", False, "first line"),
        ("", False, "no answer"),
    ],
)
def test_docker_problem(error: str | None, expect_none: bool, in_message: str) -> None:
    problem = docker_problem(error)
    assert (problem is None) == expect_none
    if problem is not None:
        assert problem.check == "docker"
        assert in_message in problem.message
        assert "\n" not in problem.message and "\n" not in problem.fix
        assert "scripts/setup.sh" in problem.fix and "DOCKER_HOST" in problem.fix


@pytest.mark.parametrize(
    ("present", "script", "fix_has"),
    [
        (True, Path("/x/scripts/setup.sh"), None),
        (False, Path("/x/scripts/setup.sh"), "bash /x/scripts/setup.sh"),
        (False, None, "--image"),
    ],
)
def test_image_problem(present: bool, script: Path | None, fix_has: str | None) -> None:
    problem = image_problem("fancy-env/singleuser:latest", present, script)
    if fix_has is None:
        assert problem is None
        return
    assert problem is not None
    assert "fancy-env/singleuser:latest is missing" in problem.message
    assert fix_has in problem.fix


@pytest.mark.parametrize(
    ("in_use", "holder", "message"),
    [
        (False, None, None),
        (True, None, "port 8000 on 127.0.0.1 is taken"),
        (True, "nginx (pid 42)", "port 8000 on 127.0.0.1 is taken by nginx (pid 42)"),
    ],
)
def test_port_problem(in_use: bool, holder: str | None, message: str | None) -> None:
    problem = port_problem("127.0.0.1", 8000, in_use, holder)
    if message is None:
        assert problem is None
        return
    assert problem is not None and problem.message == message
    assert "--port 8001" in problem.fix


@pytest.mark.parametrize(
    ("found", "problem"), [("/usr/bin/configurable-http-proxy", False), (None, True)]
)
def test_proxy_problem(found: str | None, problem: bool) -> None:
    result = proxy_problem(found)
    assert (result is not None) == problem
    if result is not None:
        assert "npm install -g configurable-http-proxy" in result.fix


@pytest.mark.parametrize(("pid", "problem"), [(None, False), (4242, True)])
def test_running_problem(pid: int | None, problem: bool) -> None:
    result = running_problem(Path("/s"), pid)
    assert (result is not None) == problem
    if result is not None:
        assert "(pid 4242)" in result.message and "--state-dir" in result.fix


def test_problem_renders_two_lines() -> None:
    problem = port_problem("127.0.0.1", 8000, True)
    assert problem is not None
    lines = problem.render().splitlines()
    assert lines[0].startswith("fancy-env up: port 8000")
    assert lines[1].strip().startswith("fix: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", ""), ("\n\n  boom  \nmore", "boom"), ("x" * 500, "x" * 160)],
)
def test_first_line(text: str, expected: str) -> None:
    assert first_line(text) == expected


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1
   2: 0100007F:1F40 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 0 1
   3: garbage
"""


def test_parse_listening() -> None:
    assert parse_listening(PROC_NET_TCP) == [("127.0.0.1", 8000, 111), ("0.0.0.0", 22, 222)]


@pytest.mark.parametrize(
    ("ip", "host"),
    [("", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("10.1.2.3", "10.1.2.3")],
)
def test_connect_host(ip: str, host: str) -> None:
    assert connect_host(ip) == host


def test_up_id_is_stable_and_short(tmp_path: Path) -> None:
    assert up_id_for(tmp_path) == up_id_for(tmp_path / "x" / "..")
    assert up_id_for(tmp_path) != up_id_for(tmp_path / "y")
    assert len(up_id_for(tmp_path)) == 10


@pytest.mark.parametrize(
    ("allow_loopback", "url", "allowed"),
    [
        (False, "https://github.com/org/repo", True),
        (False, "http://127.0.0.1:8080/repo.git", False),
        (True, "http://127.0.0.1:8080/repo.git", True),
        (True, "http://localhost/repo.git", True),
        (True, "http://127.0.0.1.evil.example/repo.git", False),
        (True, "http://10.0.0.1/repo.git", False),
    ],
)
def test_repo_patterns(allow_loopback: bool, url: str, allowed: bool) -> None:
    import re

    assert any(re.fullmatch(p, url) for p in repo_patterns(allow_loopback)) == allowed
    assert (LOOPBACK_REPOS in repo_patterns(allow_loopback)) == allow_loopback


def test_default_profiles_small_and_large() -> None:
    profiles = default_profile_list("img:1", allow_loopback=False)
    assert [p["slug"] for p in profiles] == ["small", "large"]
    assert [p.get("default", False) for p in profiles] == [True, False]
    for p in profiles:
        assert p["kubespawner_override"]["image"] == "img:1"
        assert p["repository_build"]["enabled"] is True


def _settings(tmp_path: Path, user_config: Path | None = None) -> HubSettings:
    return HubSettings(
        state_dir=tmp_path,
        ip="127.0.0.1",
        port=8000,
        hub_port=8081,
        proxy_api_port=8001,
        builder_port=8765,
        user_config=user_config,
        up_id="abc123",
        allow_loopback_repos=True,
        profile_list=default_profile_list("img:1", allow_loopback=True),
    )


@pytest.mark.parametrize("with_user_config", [False, True])
def test_render_hub_config(tmp_path: Path, with_user_config: bool) -> None:
    user = tmp_path / "mine.py" if with_user_config else None
    text = render_hub_config(_settings(tmp_path, user))
    tree = ast.parse(text)  # valid Python
    assert tree.body
    assert f"c.DockerSpawner.extra_create_kwargs = {{\"labels\": {{'{LABEL}': 'abc123'}}}}" in text
    assert 'c.DockerSpawner.prefix = "fancy-env-abc123"' in text
    assert "c.JupyterHub.port = 8000" in text and "c.JupyterHub.hub_port = 8081" in text
    assert "allow_loopback_repos=True" in text
    assert "FANCY_ENV_UP_PASSWORD" in text  # the password itself never goes to disk
    if user is not None:
        assert f"load_subconfig({str(user)!r})" in text
        # sharing comes after the user's config, so it sees the final profile_list
        assert text.index("load_subconfig(") < text.index("enable_sharing(c")
    else:
        assert "load_subconfig" not in text


@pytest.mark.parametrize("sharing", [True, False])
def test_render_sharing_switch(tmp_path: Path, sharing: bool) -> None:
    settings = dataclasses.replace(_settings(tmp_path), sharing=sharing)
    text = render_hub_config(settings)
    assert ("enable_sharing(c" in text) == sharing
    ast.parse(text)


def test_rendered_profiles_round_trip(tmp_path: Path) -> None:
    text = render_hub_config(_settings(tmp_path))
    start = text.index("c.FancyDockerSpawner.profile_list = ") + len(
        "c.FancyDockerSpawner.profile_list = "
    )
    end = text.index("\n\n", start)
    assert ast.literal_eval(text[start:end]) == default_profile_list("img:1", allow_loopback=True)
