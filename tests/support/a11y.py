"""Accessibility checks shared by the browser tests (the spawn form and the sharing pages).

`unlabelled_controls` asks Chromium itself for the accessible name of every control
(Chrome DevTools Protocol `Accessibility.getFullAXTree`: labels, aria-label, aria-labelledby,
button text), so it checks what a screen reader is given, not our guess of it.
`tab_to` walks the page with the Tab key only, as a keyboard user does.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

#: Roles a user operates; each needs an accessible name.
CONTROL_ROLES = frozenset(
    {"button", "checkbox", "combobox", "link", "listbox", "radio", "searchbox", "slider",
     "spinbutton", "switch", "textbox", "menuitem", "tab"}
)  # fmt: skip


def _value(prop: dict[str, Any] | None) -> str:
    return str((prop or {}).get("value") or "").strip()


def unlabelled_controls(page: Page) -> list[str]:
    """Controls on `page` that a screen reader would announce without a name."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    missing = []
    for node in nodes:
        role = _value(node.get("role"))
        if node.get("ignored") or role not in CONTROL_ROLES:
            continue
        if not _value(node.get("name")):
            missing.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    return missing


def tab_to(page: Page, predicate: str, limit: int = 40) -> None:
    """Press Tab until `predicate` (JS, `el` = the focused element) holds."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {predicate}; }})()"):
            return
    raise AssertionError(f"Tab never reached {predicate}")
