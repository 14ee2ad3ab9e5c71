"""Headless Debian Chromium through Playwright, for the browser tests and bench/bench_form.py.

The flags of design §4 (never `playwright install`), plus `--disable-quic` so nothing tries UDP
beside the loopback HTTP the tests serve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def launch_chromium(playwright: Any, executable_path: str) -> Browser:
    """A headless Chromium at `executable_path` from a sync Playwright, with `CHROMIUM_ARGS`."""
    browser: Browser = playwright.chromium.launch(
        executable_path=executable_path, args=CHROMIUM_ARGS
    )
    return browser


def fill_login(page: Page, user: str, password: str = "x") -> None:
    """Submit JupyterHub's login form on `page` (already at hub/login) and let it load."""
    page.locator("#username_input").fill(user)
    page.locator("#password_input").fill(password)
    page.locator("#login_submit").click()
    page.wait_for_load_state()
