"""Renders the spawner's `options_form`: a plain HTML form, the form config JSON, the bundle.

`render_options_form(spawner, profiles, saved)` gets the profiles this user may see (already
filtered by `fancy_env.profiles.visible_profiles`) and the user's previous user_options. It
returns, in this order:

1. a plain HTML form (`#fancy-env-plain`) with KubeSpawner's field names (`profile`,
   `profile-option-<slug>--<option>`, `...--unlisted-choice`, and `build_id`), so a browser
   without JavaScript still starts servers;
2. the mount point of the enhanced form (`#fancy-env-form`);
3. `<script type="application/json" id="fancy-env-config">` with the config of
   docs/internals.md: only what this user may see (no `kubespawner_override`, no `allowed_*`
   lists, no `allowed_repos` patterns), plus a freshly minted form ticket;
4. the production bundle (`fancy_env/static/form/form.js` and `form.css`) **inlined** as
   `<script>` and `<style>`. The bundle is small (about 14 KB gzip), so inlining costs less
   than one extra request, needs no static-file route in the hub, and respects any hub
   `base_url` and named server without a URL to get wrong (docs/form.md explains more).

The JavaScript removes the plain form and mounts the enhanced one, which posts the same fields.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .profiles import Profile, ProfileOption
from .tickets import mint

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static" / "form"
UNLISTED_VALUE = "unlisted-choice"
UNLISTED_SUFFIX = "--unlisted-choice"
_CLOSERS = re.compile(r"</(script|style)", re.IGNORECASE)


def field_name(profile: str, option: str) -> str:
    """KubeSpawner's form field of one profile option."""
    return f"profile-option-{profile}--{option}"


# --- the config JSON (pure) ---------------------------------------------------------------


def option_config(option: ProfileOption) -> dict[str, Any]:
    """One option as the browser sees it: keys and labels, never overrides."""
    out: dict[str, Any] = {
        "name": option.name,
        "displayName": option.display_name,
        "choices": [
            {
                "key": c.key,
                "displayName": c.display_name,
                "default": c.default,
                **({"description": c.description} if c.description else {}),
            }
            for c in option.choices
        ],
    }
    if option.unlisted.enabled:
        out["unlisted"] = {
            "enabled": True,
            "displayName": option.unlisted.display_name,
            "displayNameInChoices": option.unlisted.display_name_in_choices,
            "validationRegex": option.unlisted.validation_regex,
            "validationMessage": option.unlisted.validation_message,
        }
    return out


def profile_config(profile: Profile, builds_enabled: bool) -> dict[str, Any]:
    """One profile as the browser sees it (docs/internals.md, "Form config JSON")."""
    return {
        "slug": profile.slug,
        "displayName": profile.display_name,
        "description": profile.description,
        "default": profile.default,
        "options": [option_config(o) for o in profile.options],
        "repositoryBuild": {"enabled": builds_enabled and profile.repository_build.enabled},
    }


def saved_options(profiles: Sequence[Profile], saved: Mapping[str, Any] | None) -> dict[str, str]:
    """The previous user_options that still fit a visible profile (strings only)."""
    if not saved:
        return {}
    slug = saved.get("profile")
    profile = next((p for p in profiles if p.slug == slug), None)
    if profile is None:
        return {}
    keys = {"profile"}
    for option in profile.options:
        keys |= {option.name, option.name + UNLISTED_SUFFIX}
    return {k: v for k, v in saved.items() if k in keys and isinstance(v, str)}


def form_config(
    profiles: Sequence[Profile],
    saved: Mapping[str, Any] | None,
    *,
    base_url: str,
    builder_url: str,
    ticket: str,
    user: str,
    server_name: str,
) -> dict[str, Any]:
    """The config JSON of the enhanced form (pure)."""
    builds_enabled = bool(builder_url and ticket)
    spawn_url = f"{base_url}hub/spawn/{quote(user, safe='')}"
    if server_name:
        spawn_url += "/" + quote(server_name, safe="")
    return {
        "baseUrl": base_url,
        "builderUrl": builder_url,
        "ticket": ticket,
        "user": user,
        "serverName": server_name,
        "spawnUrl": spawn_url,
        "profiles": [profile_config(p, builds_enabled) for p in profiles],
        "saved": saved_options(profiles, saved),
    }


def script_json(value: Any) -> str:
    """JSON safe inside a `<script>` element (no `</script>`, no HTML comment openers)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --- the plain form (pure) ----------------------------------------------------------------


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _plain_option(profile: Profile, option: ProfileOption, saved: Mapping[str, str]) -> str:
    name = field_name(profile.slug, option.name)
    mine = saved.get("profile") == profile.slug
    chosen = saved.get(option.name) if mine else None
    if chosen is None:
        chosen = option.default_choice.key if option.default_choice else UNLISTED_VALUE
    other = saved.get(option.name + UNLISTED_SUFFIX, "") if mine else ""
    if other:
        chosen = UNLISTED_VALUE
    items = [
        f'<option value="{_e(c.key)}"{" selected" if c.key == chosen else ""}>'
        f"{_e(c.display_name)}</option>"
        for c in option.choices
    ]
    parts = [
        f'<div class="mb-2 ms-4"><label class="form-label" for="fe-plain-{_e(name)}">'
        f"{_e(option.display_name)}</label>"
    ]
    if option.unlisted.enabled:
        selected = " selected" if chosen == UNLISTED_VALUE else ""
        items.append(
            f'<option value="{UNLISTED_VALUE}"{selected}>'
            f"{_e(option.unlisted.display_name_in_choices)}</option>"
        )
    parts.append(
        f'<select class="form-select" id="fe-plain-{_e(name)}" name="{_e(name)}">'
        + "".join(items)
        + "</select>"
    )
    if option.unlisted.enabled:
        uname = name + UNLISTED_SUFFIX
        hint = option.unlisted.validation_message
        parts.append(
            f'<label class="form-label mt-1" for="fe-plain-{_e(uname)}">'
            f"{_e(option.unlisted.display_name)}</label>"
            f'<input class="form-control" type="text" id="fe-plain-{_e(uname)}" '
            f'name="{_e(uname)}" value="{_e(other)}"'
            + (f' title="{_e(hint)}"' if hint else "")
            + ">"
        )
    parts.append("</div>")
    return "".join(parts)


def plain_form(profiles: Sequence[Profile], saved: Mapping[str, str], builds: bool) -> str:
    """The form for browsers without JavaScript: KubeSpawner's field names, same validator."""
    chosen = saved.get("profile") or next(
        (p.slug for p in profiles if p.default), profiles[0].slug if profiles else ""
    )
    rows = ['<div id="fancy-env-plain"><fieldset><legend>Environment</legend>']
    for p in profiles:
        pid = f"fe-plain-profile-{_e(p.slug)}"
        checked = " checked" if p.slug == chosen else ""
        rows.append(
            f'<div class="form-check mt-2"><input class="form-check-input" type="radio" '
            f'name="profile" id="{pid}" value="{_e(p.slug)}"{checked}>'
            f'<label class="form-check-label fw-semibold" for="{pid}">{_e(p.display_name)}'
            "</label>"
            + (f'<div class="form-text">{_e(p.description)}</div>' if p.description else "")
            + "</div>"
        )
        rows.extend(_plain_option(p, o, saved) for o in p.options)
    rows.append("</fieldset>")
    if builds and any(p.repository_build.enabled for p in profiles):
        rows.append(
            '<div class="mt-2"><label class="form-label" for="fe-plain-build-id">Build ID '
            "(from <code>fancy-env build</code>; building in the browser needs JavaScript)"
            '</label><input class="form-control" type="text" id="fe-plain-build-id" '
            'name="build_id"></div>'
        )
    rows.append("</div>")
    return "\n".join(rows)


# --- the bundle ---------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _read_bundle(js_path: Path, mtime_js: float, mtime_css: float) -> tuple[str, str]:
    js = js_path.read_text("utf-8")
    css_path = js_path.with_name("form.css")
    css = css_path.read_text("utf-8") if mtime_css else ""
    return _close_safe(js), _close_safe(css)


def _close_safe(text: str) -> str:
    """Escape `</script` and `</style` (only strings or regexes can hold them) and `<!--`."""
    return _CLOSERS.sub(lambda m: "<\\/" + m.group(1), text).replace("<!--", "<\\!--")


def bundle(static_dir: Path = STATIC_DIR) -> tuple[str, str] | None:
    """(form.js, form.css) of the production bundle, or None when it was not built."""
    js_path = static_dir / "form.js"
    css_path = static_dir / "form.css"
    try:
        mtime_js = js_path.stat().st_mtime
    except FileNotFoundError:
        return None
    mtime_css = css_path.stat().st_mtime if css_path.exists() else 0.0
    return _read_bundle(js_path, mtime_js, mtime_css)


def page_html(
    profiles: Sequence[Profile],
    saved: Mapping[str, str],
    config: Mapping[str, Any],
    assets: tuple[str, str] | None,
) -> str:
    """Put the parts together (pure)."""
    builds = any(p["repositoryBuild"]["enabled"] for p in config["profiles"])
    parts = [plain_form(profiles, saved, builds)]
    if assets is None:
        return parts[0] + "\n<!-- fancy_env: form bundle not built; plain form only -->"
    js, css = assets
    parts += [
        '<div id="fancy-env-form"></div>',
        f'<script type="application/json" id="fancy-env-config">{script_json(config)}</script>',
        f'<style id="fancy-env-form-css">{css}</style>',
        f'<script id="fancy-env-form-js">{js}</script>',
    ]
    return "\n".join(parts)


# --- the spawner's entry point ------------------------------------------------------------


def _base_url(spawner: Any) -> str:
    hub_base = str(getattr(getattr(spawner, "hub", None), "base_url", "/hub/") or "/hub/")
    return hub_base[: -len("hub/")] if hub_base.endswith("/hub/") else "/"


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a `ticket_secret`: hex like the build service's FANCY_ENV_TICKET_SECRET
    (`BuilderApp.ticket_secret`); a non-hex string is used as UTF-8 text."""
    try:
        return bytes.fromhex(secret)
    except ValueError:
        return secret.encode("utf-8")


def _ticket(spawner: Any, username: str) -> str:
    """A form ticket, minted only for a user the spawner says may build (its
    `fancy_build_rights()`: the build scope, or admin); "" hides the repository panel."""
    secret = str(getattr(spawner, "ticket_secret", "") or "")
    if not secret or not getattr(spawner, "builder_url", ""):
        return ""
    rights_of = getattr(spawner, "fancy_build_rights", None)
    rights = rights_of() if callable(rights_of) else None
    if rights is None:
        return ""
    scopes, groups = rights
    return mint(
        secret_bytes(secret), username, int(spawner.ticket_ttl), scopes=scopes, groups=groups
    )


def render_options_form(
    spawner: Any, profiles: Sequence[Profile], saved: Mapping[str, Any] | None = None
) -> str:
    """The spawner's options_form for `profiles` (those this user may see)."""
    username = str(spawner.user.name)
    config = form_config(
        profiles,
        saved,
        base_url=_base_url(spawner),
        builder_url=str(getattr(spawner, "builder_url", "") or ""),
        ticket=_ticket(spawner, username),
        user=username,
        server_name=str(getattr(spawner, "name", "") or ""),
    )
    assets = bundle()
    if assets is None:
        log.warning("fancy_env form bundle missing in %s: serving the plain form", STATIC_DIR)
    return page_html(profiles, config["saved"], config, assets)
