"""Helpers for the spawn-form browser tests (tests/e2e/test_form_browser.py).

A real hub (`HubProcess`) with `FancyDockerSpawner` and the build service registered by
`fancy_env.setup(c)` (Docker executor, pushes to the loopback registry), and Debian Chromium
through Playwright (never `playwright install`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from .browser import fill_login
from .hub import HubProcess
from .net import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOTS = ROOT / "docs" / "_static" / "screenshots"
REGISTRY_PREFIX = "127.0.0.1:5000/fancy-env-form-e2e/"
MARKER = "/home/jovyan/fancy-env-form-marker.txt"


def profile_list(image: str) -> list[dict[str, Any]]:
    """Two profiles: one with an image choice + "Other…", both able to build repositories."""
    build = {"enabled": True, "allowed_repos": [r"http://127\.0\.0\.1:[0-9]+/.*"]}
    return [
        {
            "display_name": "Small",
            "slug": "small",
            "description": "1 CPU, 1 GB of memory. Good for notebooks and light work.",
            "default": True,
            "kubespawner_override": {"image": image, "cpu_limit": 1.0, "mem_limit": "1G"},
            "repository_build": build,
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "base": {
                            "display_name": "Python (fancy-env base image)",
                            "default": True,
                            "kubespawner_override": {"image": image},
                        },
                    },
                    "unlisted_choice": {
                        "enabled": True,
                        "display_name": "Custom image",
                        "validation_regex": r"fancy-env/[a-z-]+:[a-z0-9.]+",
                        "validation_message": "Use an image under fancy-env/ with a tag.",
                        "kubespawner_override": {"image": "{value}"},
                    },
                }
            },
        },
        {
            "display_name": "Large",
            "slug": "large",
            "description": "2 CPUs, 4 GB of memory. For heavier data work.",
            "kubespawner_override": {"image": image, "cpu_limit": 2.0, "mem_limit": "4G"},
            "repository_build": build,
        },
    ]


HUB_CONFIG = """
import fancy_env
c.JupyterHub.spawner_class = "fancy_env.spawner_docker.FancyDockerSpawner"
c.JupyterHub.allow_named_servers = True
c.DockerSpawner.image = {image!r}
c.DockerSpawner.remove = True
c.DockerSpawner.prefix = {prefix!r}
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 90
c.FancyDockerSpawner.profile_list = {profiles!r}
fancy_env.setup(
    c,
    port={builder_port},
    state_dir={state!r},
    image_prefix={registry!r},
    allow_loopback_repos=True,
)
"""


def start_hub(state: Path, image: str, base_url: str = "/") -> tuple[HubProcess, str]:
    """A hub with FancyDockerSpawner and the real build service (Docker executor), not yet
    started; and the name prefix of its server containers."""
    prefix = f"fancy-form-e2e-{free_port()}"
    config = HUB_CONFIG.format(
        image=image,
        prefix=prefix,
        profiles=profile_list(image),
        builder_port=free_port(),
        state=str(state / "builder"),
        registry=REGISTRY_PREFIX,
    )
    hub = HubProcess(state, config=config, base_url=base_url, env={"PYTHONPATH": str(ROOT)})
    return hub, prefix


def login(page: Page, hub: HubProcess, user: str, next_path: str = "") -> None:
    url = hub.url + "hub/login" + (f"?next={hub.base_url}{next_path}" if next_path else "")
    page.goto(url)
    fill_login(page, user)


def screenshot(page: Page, artifacts: Path, name: str) -> None:
    """Save to the test artifacts; with FANCY_ENV_UPDATE_SCREENSHOTS=1 also to the docs
    (docs/_static/screenshots/), so a plain test run leaves the working tree clean."""
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("FANCY_ENV_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / f"{name}.png")


def form_config(page: Page) -> dict[str, Any]:
    """The config JSON the spawner embedded in the page."""
    cfg: dict[str, Any] = page.evaluate(
        "JSON.parse(document.getElementById('fancy-env-config').textContent)"
    )
    return cfg


def builder_get(page: Page, path: str) -> Any:
    """GET the build service from the page, with the form's ticket (as the form does)."""
    return page.evaluate(
        """async (path) => {
            const cfg = JSON.parse(document.getElementById('fancy-env-config').textContent);
            const r = await fetch(cfg.builderUrl + path,
                                  {headers: {'X-Fancy-Env-Ticket': cfg.ticket}});
            return {status: r.status, body: await r.json()};
        }""",
        path,
    )


def running_containers(prefix: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "--format", "{{.Names}} {{.Image}}", "--filter", f"name={prefix}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line for line in out.stdout.splitlines() if line.strip()]
