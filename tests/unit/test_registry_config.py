"""Where the registry credentials' path goes: `fancy_env.setup`, `fancy-env up`'s config, and
the build service's traits. Only the path travels (the hub stores the service's environment in
its database); a missing entry or a broken file stops the service with a message."""

from __future__ import annotations

import ast
import base64
import json
import os
from pathlib import Path

import pytest
from traitlets.config import Config

import fancy_env
from fancy_env.builder.app import BuilderApp
from fancy_env.hubconfig import read_service_file, service_file_of
from fancy_env.up import HubSettings, default_registry_credentials, render_hub_config


def auth_file(path: Path, registry: str, secret: str = "s3cret") -> Path:
    auth = base64.b64encode(f"fancy-env:{secret}".encode()).decode()
    path.write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    path.chmod(0o600)
    return path


def builder_config(c: Config) -> dict[str, dict[str, object]]:
    """The service's config, from the 0600 service file `setup` writes (not the hub's DB)."""
    path = service_file_of(c.JupyterHub.services[0])
    assert path is not None
    config: dict[str, dict[str, object]] = read_service_file(path)["config"]
    return config


@pytest.mark.parametrize(
    ("prefix", "explicit", "env", "expected"),
    [
        ("127.0.0.1:5000/fe/", "/x/auth.json", "", "/x/auth.json"),
        ("127.0.0.1:5000/fe/", None, "/y/env.json", "/y/env.json"),
        ("127.0.0.1:5000/fe/", "/x/auth.json", "/y/env.json", "/x/auth.json"),
        ("ghcr.io/org/", None, "/y/env.json", "/y/env.json"),
        ("fancy-env/", "/x/auth.json", "", None),  # the local engine: no registry
        ("127.0.0.1:5000/fe/", None, "", None),
    ],
)
def test_setup_passes_only_the_path(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefix: str,
    explicit: str | None,
    env: str,
    expected: str | None,
) -> None:
    if env:
        monkeypatch.setenv("FANCY_ENV_REGISTRY_AUTH", env)
    else:
        monkeypatch.delenv("FANCY_ENV_REGISTRY_AUTH", raising=False)
    c = Config()
    fancy_env.setup(c, state_dir=tmp_path, image_prefix=prefix, registry_credentials_file=explicit)
    assert builder_config(c)["BuilderApp"].get("registry_credentials_file") == expected


def test_setup_never_reads_the_secret(tmp_path: Path) -> None:
    path = auth_file(tmp_path / "auth.json", "127.0.0.1:5000")
    c = Config()
    fancy_env.setup(c, state_dir=tmp_path, image_prefix="127.0.0.1:5000/fe/",
                    registry_credentials_file=path)  # fmt: skip
    assert "s3cret" not in json.dumps(c.JupyterHub.services[0])


def _settings(tmp_path: Path, registry: str, creds: str) -> HubSettings:
    return HubSettings(
        state_dir=tmp_path, ip="127.0.0.1", port=8000, hub_port=8081, proxy_api_port=8001,
        builder_port=8765, up_id="abc", registry=registry, registry_credentials_file=creds,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("registry", "creds", "present", "absent"),
    [
        ("", "", ["the local engine as cache"], ["image_prefix=", "registry_credentials_file="]),
        (
            "127.0.0.1:5000",
            "/s/registry-auth.json",
            [
                "image_prefix='127.0.0.1:5000/fancy-env/'",
                "registry_credentials_file='/s/registry-auth.json'",
            ],
            [],
        ),  # fmt: skip
        ("127.0.0.1:5000", "", ["image_prefix='127.0.0.1:5000/fancy-env/'"], ["credentials_file"]),
    ],
)
def test_up_config_registry_lines(
    tmp_path: Path, registry: str, creds: str, present: list[str], absent: list[str]
) -> None:
    text = render_hub_config(_settings(tmp_path, registry, creds))
    ast.parse(text)
    for needle in present:
        assert needle in text
    for needle in absent:
        assert needle not in text


@pytest.mark.parametrize(
    ("content", "registry", "found"),
    [
        ({"auths": {"127.0.0.1:5000": {"auth": "eDp5"}}}, "127.0.0.1:5000", True),
        ({"auths": {"127.0.0.1:5055": {"auth": "eDp5"}}}, "127.0.0.1:5000", False),
        ({"auths": []}, "127.0.0.1:5000", False),
        ("not json", "127.0.0.1:5000", False),
        (None, "127.0.0.1:5000", False),
    ],
)
def test_up_finds_setup_credentials(
    tmp_path: Path, content: object, registry: str, found: bool
) -> None:
    if content is not None:
        text = content if isinstance(content, str) else json.dumps(content)
        (tmp_path / "registry-auth.json").write_text(text)
    expected = str(tmp_path / "registry-auth.json") if found else ""
    assert default_registry_credentials(registry, tmp_path) == expected


def _app(**traits: object) -> BuilderApp:
    app = BuilderApp(config=Config({"BuilderApp": traits}))
    return app


def test_builder_reads_the_entry_for_its_registry(tmp_path: Path) -> None:
    path = auth_file(tmp_path / "a.json", "127.0.0.1:5000")
    app = _app(image_prefix="127.0.0.1:5000/fe/", registry_credentials_file=str(path))
    cred = app.registry_credential()
    assert cred is not None and (cred.username, cred.password) == ("fancy-env", "s3cret")
    engine = app.make_executor(cred).registry_credentials
    assert engine == {"registry": "http://127.0.0.1:5000", "username": "fancy-env",
                      "password": "s3cret"}  # fmt: skip


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: auth_file(p, "127.0.0.1:5055"), "has no auths entry for '127.0.0.1:5000'"),
        (lambda p: p.write_text("{"), "not valid JSON"),
        (lambda p: None, "No such file"),
    ],
)
def test_builder_stops_with_a_message(tmp_path: Path, write: object, message: str) -> None:
    path = tmp_path / "a.json"
    write(path)  # type: ignore[operator]
    app = _app(image_prefix="127.0.0.1:5000/fe/", registry_credentials_file=str(path))
    with pytest.raises(SystemExit, match=message):
        app.registry_credential()


def test_builder_warns_about_a_readable_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = auth_file(tmp_path / "a.json", "127.0.0.1:5000")
    os.chmod(path, 0o644)
    app = _app(image_prefix="127.0.0.1:5000/fe/", registry_credentials_file=str(path))
    app.log.propagate = True
    with caplog.at_level("WARNING"):
        app.registry_credential()
    assert "chmod 600" in caplog.text
