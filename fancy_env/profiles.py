"""Typed model of KubeSpawner's `profile_list` (pure: no I/O).

`parse_profile_list(raw)` accepts everything KubeSpawner 7 accepts (a list of profile dicts,
or a dict of them, which KubeSpawner sorts by key), fills KubeSpawner's defaults (slug from
`display_name`, first profile default when none is, first choice default when none is) and
raises `ProfileConfigError` naming the exact path of the first mistake, e.g.
`profile_list[2].profile_options.image.choices.py311: display_name must be a string`.

Our optional extra keys: `allowed_users` / `allowed_groups` on a profile or a choice, and
`repository_build` on a profile. Unknown keys are accepted (KubeSpawner ignores them too).
"""

from __future__ import annotations

import re

# re._parser: the Python 3.11+ regex parser, used only for the prefix-regex warning
import re._constants as _sre_constants
import re._parser as _sre_parser
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from slugify import slugify

#: user_options keys the spawner reserves; no profile option may use them as its name.
RESERVED_OPTION_NAMES = frozenset({"profile", "build_id"})
#: the suffix KubeSpawner uses for free-text values of an option.
UNLISTED_SUFFIX = "--unlisted-choice"


class ProfileConfigError(ValueError):
    """A mistake in the admin's profile_list; `path` names it, e.g.
    `profile_list[2].profile_options.image.choices.py311`."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Access:
    """Who may see and use a profile or a choice. Empty lists on both = everyone."""

    allowed_users: frozenset[str] = frozenset()
    allowed_groups: frozenset[str] = frozenset()

    def allows(self, username: str, groups: frozenset[str] | set[str]) -> bool:
        if not self.allowed_users and not self.allowed_groups:
            return True
        return username in self.allowed_users or bool(self.allowed_groups & set(groups))


@dataclass(frozen=True)
class Choice:
    key: str
    display_name: str
    default: bool = False
    description: str = ""
    override: dict[str, Any] = field(default_factory=dict)  # kubespawner_override
    access: Access = Access()


@dataclass(frozen=True)
class UnlistedChoice:
    enabled: bool = False
    display_name: str = "Other"
    display_name_in_choices: str = "Other..."
    validation_regex: str | None = None
    validation_message: str = ""
    override: dict[str, Any] = field(default_factory=dict)  # values may contain "{value}"


@dataclass(frozen=True)
class ProfileOption:
    name: str
    display_name: str
    choices: tuple[Choice, ...] = ()
    unlisted: UnlistedChoice = UnlistedChoice()

    def choice(self, key: str) -> Choice | None:
        return next((c for c in self.choices if c.key == key), None)

    @property
    def default_choice(self) -> Choice | None:
        return next(
            (c for c in self.choices if c.default), self.choices[0] if self.choices else None
        )


@dataclass(frozen=True)
class RepositoryBuild:
    enabled: bool = False
    allowed_repos: tuple[str, ...] = ()  # full-match regexes; empty = any repository
    override: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    override: dict[str, Any] = field(default_factory=dict)  # kubespawner_override
    options: tuple[ProfileOption, ...] = ()
    access: Access = Access()
    repository_build: RepositoryBuild = RepositoryBuild()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: where it was written, e.g. "profile_list[2]" or "profile_list['gpu']" (for messages)
    path: str = field(default="", compare=False, repr=False)

    def option(self, name: str) -> ProfileOption | None:
        return next((o for o in self.options if o.name == name), None)


# --- small typed getters that name the path -------------------------------------------------


def _get_str(d: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    value = d.get(key, default)
    if value is None:
        raise ProfileConfigError(f"{path}.{key}", "is required (a string)")
    if not isinstance(value, str):
        raise ProfileConfigError(f"{path}.{key}", f"must be a string, not {type(value).__name__}")
    return value


def _get_bool(d: Mapping[str, Any], key: str, path: str) -> bool:
    value = d.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ProfileConfigError(f"{path}.{key}", f"must be true or false, not {value!r}")
    return value


def _get_dict(d: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ProfileConfigError(f"{path}.{key}", f"must be a dict, not {type(value).__name__}")
    for k in value:
        if not isinstance(k, str):
            raise ProfileConfigError(f"{path}.{key}", f"keys must be strings, not {k!r}")
    return dict(value)


def _get_str_list(d: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = d.get(key)
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ProfileConfigError(f"{path}.{key}", "must be a list of strings")
    items = tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ProfileConfigError(f"{path}.{key}[{i}]", f"must be a string, not {item!r}")
    return items


def _check_regex(pattern: str, path: str) -> None:
    try:
        re.compile(pattern)
    except re.error as e:
        raise ProfileConfigError(path, f"is not a valid regular expression: {e}") from None


def _access(d: Mapping[str, Any], path: str) -> Access:
    return Access(
        allowed_users=frozenset(_get_str_list(d, "allowed_users", path)),
        allowed_groups=frozenset(_get_str_list(d, "allowed_groups", path)),
    )


def _require_mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProfileConfigError(path, f"must be a dict, not {type(value).__name__}")
    return value


# --- parsing -------------------------------------------------------------------------------


def _parse_choices(raw: Any, path: str) -> tuple[Choice, ...]:
    if raw is None:
        return ()
    raw = _require_mapping(raw, path)
    choices = []
    for key, value in raw.items():
        cpath = f"{path}.{key}"
        if not isinstance(key, str) or not key:
            raise ProfileConfigError(cpath, "choice keys must be non-empty strings")
        value = _require_mapping(value, cpath)
        choices.append(
            Choice(
                key=key,
                display_name=_get_str(value, "display_name", cpath, default=key),
                default=_get_bool(value, "default", cpath),
                description=_get_str(value, "description", cpath, default=""),
                override=_get_dict(value, "kubespawner_override", cpath),
                access=_access(value, cpath),
            )
        )
    return tuple(_one_default(choices))


def _parse_unlisted(raw: Any, path: str) -> UnlistedChoice:
    if raw is None:
        return UnlistedChoice()
    raw = _require_mapping(raw, path)
    regex = raw.get("validation_regex")
    if regex is not None:
        if not isinstance(regex, str):
            raise ProfileConfigError(f"{path}.validation_regex", "must be a string")
        _check_regex(regex, f"{path}.validation_regex")
    return UnlistedChoice(
        enabled=_get_bool(raw, "enabled", path),
        display_name=_get_str(raw, "display_name", path, default="Other"),
        display_name_in_choices=_get_str(raw, "display_name_in_choices", path, "Other..."),
        validation_regex=regex or None,
        validation_message=_get_str(raw, "validation_message", path, default=""),
        override=_get_dict(raw, "kubespawner_override", path),
    )


def _parse_option(name: Any, raw: Any, path: str) -> ProfileOption:
    if not isinstance(name, str) or not name:
        raise ProfileConfigError(path, "option names must be non-empty strings")
    if name in RESERVED_OPTION_NAMES or name.endswith(UNLISTED_SUFFIX):
        raise ProfileConfigError(
            path,
            f"{name!r} is reserved; option names may not be 'profile', 'build_id' "
            f"or end with {UNLISTED_SUFFIX!r}",
        )
    raw = _require_mapping(raw, path)
    choices = _parse_choices(raw.get("choices"), f"{path}.choices")
    unlisted = _parse_unlisted(raw.get("unlisted_choice"), f"{path}.unlisted_choice")
    if not choices and not unlisted.enabled:
        raise ProfileConfigError(path, "needs choices or an enabled unlisted_choice")
    return ProfileOption(
        name=name,
        display_name=_get_str(raw, "display_name", path, default=name),
        choices=choices,
        unlisted=unlisted,
    )


def _parse_repository_build(raw: Any, path: str) -> RepositoryBuild:
    if raw is None:
        return RepositoryBuild()
    raw = _require_mapping(raw, path)
    patterns = _get_str_list(raw, "allowed_repos", path)
    for i, pattern in enumerate(patterns):
        _check_regex(pattern, f"{path}.allowed_repos[{i}]")
    return RepositoryBuild(
        enabled=_get_bool(raw, "enabled", path),
        allowed_repos=patterns,
        override=_get_dict(raw, "kubespawner_override", path),
    )


def _parse_profile(raw: Any, path: str) -> Profile:
    raw = _require_mapping(raw, path)
    display_name = _get_str(raw, "display_name", path)
    slug = raw.get("slug")
    if slug is None:
        slug = slugify(display_name)
        if not slug:
            raise ProfileConfigError(
                f"{path}.display_name", "gives an empty slug; set 'slug' explicitly"
            )
    elif not isinstance(slug, str) or not slug:
        raise ProfileConfigError(f"{path}.slug", "must be a non-empty string")
    raw_options = raw.get("profile_options")
    if raw_options is None:
        raw_options = {}
    raw_options = _require_mapping(raw_options, f"{path}.profile_options")
    options = tuple(
        _parse_option(name, value, f"{path}.profile_options.{name}")
        for name, value in raw_options.items()
    )
    return Profile(
        slug=slug,
        display_name=display_name,
        description=_get_str(raw, "description", path, default=""),
        default=_get_bool(raw, "default", path),
        override=_get_dict(raw, "kubespawner_override", path),
        options=options,
        access=_access(raw, path),
        repository_build=_parse_repository_build(
            raw.get("repository_build"), f"{path}.repository_build"
        ),
        raw=dict(raw),
        path=path,
    )


def _one_default(items: list[Any]) -> list[Any]:
    """KubeSpawner uses the first item marked default, else the first item: mark exactly it."""
    if not items:
        return items
    index = next((i for i, item in enumerate(items) if item.default), 0)
    return [replace(item, default=(i == index)) for i, item in enumerate(items)]


def parse_profile_list(raw: Any) -> tuple[Profile, ...]:
    """Parse an evaluated `profile_list` (list, or dict sorted by key like KubeSpawner)."""
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        entries = [(f"profile_list[{key!r}]", raw[key]) for key in sorted(raw)]
    elif isinstance(raw, list | tuple):
        entries = [(f"profile_list[{i}]", item) for i, item in enumerate(raw)]
    else:
        raise ProfileConfigError(
            "profile_list", f"must be a list of dicts (or a callable), not {type(raw).__name__}"
        )
    profiles = [_parse_profile(item, path) for path, item in entries]
    seen: dict[str, str] = {}
    for (path, _), profile in zip(entries, profiles, strict=True):
        if profile.slug in seen:
            raise ProfileConfigError(
                f"{path}.slug", f"duplicate slug {profile.slug!r} (also {seen[profile.slug]})"
            )
        seen[profile.slug] = path
    return tuple(_one_default(profiles))


# --- the service's copy ----------------------------------------------------------------------


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    """`d` without the entries that are their parser's default (False, "", None, empty)."""
    return {k: v for k, v in d.items() if v}


def _access_data(access: Access) -> dict[str, Any]:
    return {"allowed_users": access.allowed_users, "allowed_groups": access.allowed_groups}


def _option_data(option: ProfileOption) -> dict[str, Any]:
    choices = {
        c.key: _compact({"display_name": c.display_name, "default": c.default,
                         "description": c.description, **_access_data(c.access)})
        for c in option.choices
    }  # fmt: skip
    u = option.unlisted
    unlisted = _compact({
        "enabled": u.enabled, "display_name": u.display_name,
        "display_name_in_choices": u.display_name_in_choices,
        "validation_regex": u.validation_regex, "validation_message": u.validation_message,
    })  # fmt: skip
    return _compact({"display_name": option.display_name, "choices": choices,
                     "unlisted_choice": unlisted})  # fmt: skip


def service_profile_list(profiles: Iterable[Profile]) -> list[dict[str, Any]]:
    """The parsed profiles as a `profile_list` without any `kubespawner_override` (images,
    volumes, environment values: they may hold secrets or callables and stay in the hub), for
    the build service's link pages. `parse_profile_list` of it gives the same slugs, choices,
    defaults, access lists and regexes. Access lists stay frozensets (fancy_env.configdata
    carries them as sets)."""
    out = []
    for p in profiles:
        build = p.repository_build
        out.append(_compact({
            "slug": p.slug, "display_name": p.display_name, "description": p.description,
            "default": p.default, **_access_data(p.access),
            "profile_options": {o.name: _option_data(o) for o in p.options},
            "repository_build": _compact(
                {"enabled": build.enabled, "allowed_repos": list(build.allowed_repos)}
            ),
        }))  # fmt: skip
    return out


# --- per-user view -------------------------------------------------------------------------


def _visible_option(option: ProfileOption, username: str, groups: set[str]) -> ProfileOption | None:
    choices = [c for c in option.choices if c.access.allows(username, groups)]
    if not choices and not option.unlisted.enabled:
        return None
    if len(choices) == len(option.choices):
        return option
    return replace(option, choices=tuple(_one_default(choices)))


def visible_profiles(
    profiles: Iterable[Profile], username: str, groups: Iterable[str]
) -> list[Profile]:
    """The profiles (and, inside them, the choices) this user may see and use.

    A profile whose every option loses all its choices (and has no free text) is hidden too.
    Defaults are re-assigned when the default profile or choice is hidden.
    """
    group_set = set(groups)
    result = []
    for profile in profiles:
        if not profile.access.allows(username, group_set):
            continue
        options = [_visible_option(o, username, group_set) for o in profile.options]
        if any(o is None for o in options):
            continue
        kept = tuple(o for o in options if o is not None)
        result.append(profile if kept == profile.options else replace(profile, options=kept))
    return _one_default(result)


def default_profile(profiles: Iterable[Profile]) -> Profile | None:
    items = list(profiles)
    return next((p for p in items if p.default), items[0] if items else None)


# --- warnings ------------------------------------------------------------------------------


def _ends_anchored(items: Any) -> bool:
    """True when a parsed regex (sequence of (op, arg)) can only match up to the end of text,
    or ends with an unbounded `.*`-like repeat of any character (differs only in newlines)."""
    seq = list(items)
    if not seq:
        return False
    op, arg = seq[-1]
    c = _sre_constants
    if op is c.AT:
        return arg in (c.AT_END, c.AT_END_STRING)
    if op is c.SUBPATTERN:
        return _ends_anchored(arg[-1])
    if op is c.BRANCH:
        return all(_ends_anchored(branch) for branch in arg[1])
    repeats = (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT))
    if op in repeats:
        _low, high, sub = arg
        sub_items = list(sub)
        return high is c.MAXREPEAT and len(sub_items) == 1 and sub_items[0][0] is c.ANY
    return False


def regex_warnings(profiles: Iterable[Profile]) -> list[str]:
    """Warnings for `validation_regex` values written as a prefix.

    KubeSpawner checked free text with `re.match` (only the start must match); fancy_env uses
    `re.fullmatch`, so a regex like `^pangeo/` now refuses `pangeo/notebook:latest`.
    """
    warnings = []
    for i, profile in enumerate(profiles):
        for option in profile.options:
            regex = option.unlisted.validation_regex
            if not regex:
                continue
            if _ends_anchored(_sre_parser.parse(regex)):
                continue
            base = profile.path or f"profile_list[{i}]"
            path = f"{base}.profile_options.{option.name}.unlisted_choice"
            warnings.append(
                f"{path}.validation_regex: {regex!r} is not anchored at the end; fancy_env "
                f"matches the whole value (re.fullmatch), KubeSpawner matched only a prefix "
                f"(re.match), so values it accepted may now be refused. Add '.*' or the rest "
                f"of the pattern if a prefix match was intended."
            )
    return warnings
