"""Effective overrides for a validated Selection, in KubeSpawner's order (pure: no I/O).

KubeSpawner applies, each on top of the previous one:

1. the chosen profile's `kubespawner_override`;
2. for each option, in the profile's order, the chosen choice's `kubespawner_override`, or
   the unlisted choice's `kubespawner_override` with `{value}` replaced by the user's text.

fancy_env adds, for a start from a confirmed repository build:

3. the profile's `repository_build.kubespawner_override`;
4. `{"image": <the image the build service confirmed>}`.

A layer's dict values are *merged* into a dict trait (recursively; `None` removes a key),
every other value replaces the trait — KubeSpawner's `_apply_overrides`. The spawner
evaluates callables (admin-written, never user-supplied) while applying.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from .profiles import Profile
from .validation import Selection


def _format_str(template: str, value: str) -> str:
    """Replace `{value}` fields; keep every other field as written (KubeSpawner's
    IgnoreMissing), including attribute/index forms like `{value.upper}`."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:  # unbalanced braces: str.format could not use it either
        return template.replace("{value}", value)
    out = []
    for literal, field_name, spec, conversion in parts:
        out.append(literal)
        if field_name is None:
            continue
        if field_name == "value" and not spec and not conversion:
            out.append(value)
        else:
            out.append(
                "{"
                + field_name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
    return "".join(out)


def format_value(template: Any, value: str) -> Any:
    """KubeSpawner's `recursive_format(template, value=value)`: replace `{value}` in strings,
    recursively in lists, sets and dicts (keys too); other `{…}` fields are left as they are.
    The user's text is inserted once and never formatted itself."""
    if isinstance(template, str):
        return _format_str(template, value)
    if isinstance(template, list):
        return [format_value(item, value) for item in template]
    if isinstance(template, set):
        return {format_value(item, value) for item in template}
    if isinstance(template, dict):
        return {format_value(k, value): format_value(v, value) for k, v in template.items()}
    return template


def override_layers(
    profile: Profile, selection: Selection, confirmed_image: str | None = None
) -> list[dict[str, Any]]:
    """The override dicts to apply, in order (see module docstring)."""
    if profile.slug != selection.profile:
        raise ValueError(f"selection is for {selection.profile!r}, not {profile.slug!r}")
    layers: list[dict[str, Any]] = [dict(profile.override)]
    for option in profile.options:
        if option.name in selection.unlisted:
            value = selection.unlisted[option.name]
            layers.append({k: format_value(v, value) for k, v in option.unlisted.override.items()})
            continue
        key = selection.choices.get(option.name)
        choice = option.choice(key) if key is not None else None
        if choice is None:
            raise ValueError(f"selection has no choice for option {option.name!r}")
        layers.append(dict(choice.override))
    if selection.build_id is not None:
        if confirmed_image is None:
            raise ValueError("a build start needs the confirmed image")
        layers.append(dict(profile.repository_build.override))
        layers.append({"image": confirmed_image})
    return [layer for layer in layers if layer]


def merge_into(target: dict[str, Any], new: Mapping[str, Any]) -> None:
    """KubeSpawner's `recursive_update`: merge dicts recursively; `None` removes a key."""
    for key, value in new.items():
        if isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            merge_into(target[key], value)
        elif value is None:
            target.pop(key, None)
        else:
            target[key] = value


def apply_layers(current: Mapping[str, Any], layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply layers to a snapshot of trait values (pure twin of the spawner's apply step).

    Returns the new values of every key any layer touched.
    """
    import copy

    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            base = result[key] if key in result else copy.deepcopy(current.get(key))
            if isinstance(value, dict) and isinstance(base, dict):
                merge_into(base, value)
                result[key] = base
            else:
                result[key] = value
    return result


def override_keys(profile: Profile) -> dict[str, list[str]]:
    """Every override key a profile can apply, with the config paths that set it (relative
    to the profile)."""
    found: dict[str, list[str]] = {}

    def add(keys: Mapping[str, Any], path: str) -> None:
        for key in keys:
            found.setdefault(key, []).append(f"{path}.{key}")

    add(profile.override, "kubespawner_override")
    for option in profile.options:
        base = f"profile_options.{option.name}"
        for choice in option.choices:
            add(choice.override, f"{base}.choices.{choice.key}.kubespawner_override")
        add(option.unlisted.override, f"{base}.unlisted_choice.kubespawner_override")
    add(profile.repository_build.override, "repository_build.kubespawner_override")
    return found
