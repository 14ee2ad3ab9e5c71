"""Renders the spawner's `options_form` (PLACEHOLDER until the form work lands).

Contract: `render_options_form(spawner, profiles, saved, error=None) -> str` where `profiles`
are the profiles this user may see (already filtered, choices filtered too) and `saved` the
user's previous user_options. The HTML posts KubeSpawner's field names.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from .profiles import Profile


def render_options_form(
    spawner: Any, profiles: Sequence[Profile], saved: dict[str, Any] | None = None
) -> str:
    rows = []
    for i, p in enumerate(profiles):
        checked = " checked" if (p.default or i == 0) else ""
        rows.append(
            f'<label><input type="radio" name="profile" value="{html.escape(p.slug)}"{checked}>'
            f" {html.escape(p.display_name)}</label>"
        )
        for opt in p.options:
            field = f"profile-option-{p.slug}--{opt.name}"
            options = "".join(
                f'<option value="{html.escape(c.key)}">{html.escape(c.display_name)}</option>'
                for c in opt.choices
            )
            rows.append(
                f'<label>{html.escape(opt.display_name)} <select name="{html.escape(field)}">'
                f"{options}</select></label>"
            )
    return "\n".join(rows)
