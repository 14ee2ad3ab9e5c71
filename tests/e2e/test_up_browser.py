"""The README's promise, in a real browser: `fancy-env up`, log in with the printed password,
pick a profile, build a repository served on loopback, land in the server built from it.

Debian chromium through Playwright (`executable_path`, never `playwright install`).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.support.browser import fill_login, launch_chromium
from tests.support.gitserver import GitServer
from tests.support.up_process import UpProcess, leftovers

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

BUILD_TIMEOUT_MS = 300_000
MARKER_PATH = "/home/jovyan/fancy-env-e2e.txt"


def docker_inspect(container: str, fmt: str) -> str:
    """One field of `docker inspect` of a container, as text."""
    out = subprocess.run(
        ["docker", "inspect", "-f", fmt, container], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.fixture
def up(tmp_path: Path, docker_engine: str) -> Iterator[UpProcess]:
    # the README's main command, exactly: bash scripts/run.sh (setup check, install, up)
    proc = UpProcess(tmp_path / "state", extra=["--allow-loopback-repos"], via_run_sh=True)
    proc.start(timeout=600)
    yield proc
    try:
        if proc.proc is not None and proc.proc.poll() is None:
            assert proc.interrupt() == 0, proc.output()
    finally:
        proc.force_cleanup()


@pytest.fixture
def page(chromium_path: str, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = launch_chromium(pw, chromium_path)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            page.screenshot(path=str(artifacts / f"{request.node.name}.png"), full_page=True)
            context.close()
            browser.close()


def test_login_pick_profile_build_repo_and_reach_server(
    up: UpProcess, page: Page, git_server: GitServer, docker_engine: str, artifacts: Path
) -> None:
    token = uuid.uuid4().hex[:12]
    repo = git_server.create(
        "e2e-env",
        {
            "Dockerfile": f"FROM {docker_engine}\nRUN echo {token} > {MARKER_PATH}\n",
            "README.md": "an environment built by the browser test\n",
        },
    )

    page.goto(up.url + "hub/login")
    fill_login(page, "carol", up.password)
    page.wait_for_url("**/hub/spawn**")

    environment = page.get_by_role("group", name="Environment")
    environment.get_by_role("radio", name="Large").check()
    expect(environment.get_by_role("radio", name="Large")).to_be_checked()
    page.get_by_label("Repository URL").fill(repo.url)
    page.get_by_label("Branch, tag or commit").fill("main")
    page.get_by_role("button", name="Build and start", exact=True).click()
    expect(page.get_by_label("Build log")).to_be_visible(timeout=60_000)  # the log streams
    page.screenshot(path=str(artifacts / "up-building.png"), full_page=True)

    # the build log streams, the image is built, the form submits, the server starts
    page.wait_for_url("**/user/carol/**", timeout=BUILD_TIMEOUT_MS)
    # the browser reads a file of the built image through the server
    page.goto(up.url + "user/carol/files/fancy-env-e2e.txt")
    expect(page.locator("body")).to_contain_text(token)
    containers, _, _ = leftovers(up.state, set())
    assert len(containers) == 1
    # the server runs the image we built: its marker file holds this test's token
    out = subprocess.run(
        ["docker", "exec", containers[0], "cat", MARKER_PATH],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == token
    image = docker_inspect(containers[0], "{{.Config.Image}}")
    assert image != docker_engine, image
    memory = docker_inspect(containers[0], "{{.HostConfig.Memory}}")
    assert memory == str(4 * 1024**3)  # the Large profile's limit applies to the built image

    assert up.interrupt() == 0, up.output()
    assert leftovers(up.state, up.generated_ports()) == ([], {}, set())
    subprocess.run(["docker", "rmi", "-f", image], capture_output=True)  # one per run: tidy up
