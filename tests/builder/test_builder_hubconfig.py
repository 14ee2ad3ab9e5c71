"""`fancy_env.setup(c)`: what it writes into a JupyterHub config, and that it stays overridable."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from traitlets.config import Config

import fancy_env
from fancy_env.buildref import HTTPBuildConfirmer


def test_setup_registers_service_scopes_and_spawner(tmp_path: Path) -> None:
    c = Config()
    c.JupyterHub.base_url = "/jh/"
    c.JupyterHub.services = [{"name": "other", "api_token": "x"}]
    c.JupyterHub.extra_user_scopes = {"read:users:name"}
    service = fancy_env.setup(
        c, port=9999, state_dir=tmp_path, allow_loopback_repos=True,
        builder_config={"BuilderApp": {"max_concurrent_builds": 4}},
    )  # fmt: skip
    assert [s["name"] for s in c.JupyterHub.services] == ["other", "fancy-env"]
    assert service["url"] == "http://127.0.0.1:9999"
    assert service["command"][1:] == ["-m", "fancy_env.service"]
    assert service["cwd"] == str(tmp_path)
    # the service is handed a path; the secret and the config are in a 0600 file
    assert set(service["environment"]) == {"FANCY_ENV_SERVICE_FILE", "PYTHONPATH"}
    service_file = Path(service["environment"]["FANCY_ENV_SERVICE_FILE"])
    assert service_file.parent == tmp_path and stat.S_IMODE(service_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    stored = json.loads(service_file.read_text())
    config = stored["config"]
    assert config["BuilderApp"]["max_concurrent_builds"] == 4
    assert config["BuilderApp"]["allowed_http_hosts"] == ["127.0.0.1", "localhost"]
    assert set(c.JupyterHub.custom_scopes) == {"custom:fancy-env:build", "custom:fancy-env:admin"}
    assert c.JupyterHub.extra_user_scopes == {
        "read:users:name", "custom:fancy-env:build", "access:services!service=fancy-env",
    }  # fmt: skip
    spawner = c.FancySpawnerMixin
    assert spawner.builder_url == "/jh/services/fancy-env/"
    assert spawner.builder_api_url == "http://127.0.0.1:9999/jh/services/fancy-env/"
    assert spawner.builder_api_token == service["api_token"]
    assert spawner.ticket_secret == stored["ticket_secret"]
    assert spawner.ticket_secret not in json.dumps(service)
    assert isinstance(spawner.build_confirmer, HTTPBuildConfirmer)
    assert service["api_token"] not in repr(spawner.build_confirmer)
    secret_file = tmp_path / "ticket_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600

    again = Config()
    fancy_env.setup(again, state_dir=tmp_path)
    assert again.FancySpawnerMixin.ticket_secret == spawner.ticket_secret  # persisted


def test_redefined_user_role_keeps_self(tmp_path: Path) -> None:
    c = Config()
    c.JupyterHub.load_roles = [{"name": "user", "scopes": ["read:users"]}]
    fancy_env.setup(c, state_dir=tmp_path)
    role, service_role = c.JupyterHub.load_roles
    assert set(role["scopes"]) == {
        "self", "read:users", "custom:fancy-env:build", "access:services!service=fancy-env",
    }  # fmt: skip
    # image retention: the service may list running servers (and their user_options)
    assert service_role == {"name": "fancy-env-service", "services": ["fancy-env"],
                            "scopes": ["list:users", "read:servers"]}  # fmt: skip


def test_everything_stays_overridable(tmp_path: Path) -> None:
    c = Config()
    service = fancy_env.setup(c, state_dir=tmp_path, grant_to_all_users=False)
    assert "extra_user_scopes" not in c.JupyterHub
    service["url"] = "http://hub:8765"
    c.FancySpawnerMixin.builder_url = "/custom/"
    assert c.JupyterHub.services[-1]["url"] == "http://hub:8765"
    assert c.FancySpawnerMixin.builder_url == "/custom/"
