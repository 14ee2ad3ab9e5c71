"""The one validator for every way a server starts (pure: no I/O).

Four doors carry a user's choice: the spawn form POST, a `GET /hub/spawn?opt-…` link,
the REST API (`user_options` in the JSON body) and saved options on a restart. The first two
arrive as form data (`dict[str, list[str]]`, KubeSpawner's field names) and are turned into
`user_options` by `user_options_from_form`; all four then go through `validate_user_options`,
which yields a normalised `Selection` or raises `ValidationError` naming the field and the
allowed values.

Rules (see docs/spawners.md for what users see):

* `user_options` keys are KubeSpawner's: `profile`, `<option>`, `<option>--unlisted-choice`,
  plus our `build_id`. Any other key is **refused** (not ignored), so a script that sends
  `image`, `cmd` or `kubespawner_override` learns at once that it has no effect. (`image` is
  accepted only when the chosen profile has an option *named* `image`; its value is then a
  choice key, never an image.)
* Every value must be a string; an empty string means "not given" (KubeSpawner's behaviour).
* No `profile` key means the user's default profile — and the other keys are still checked
  against it (KubeSpawner skipped validation in that case).
* An unknown profile or choice and one the user may not see are refused with the same
  message, listing what this user may choose.
* Free text must match the admin's `validation_regex` over the whole value (`re.fullmatch`).
* `build_id` is accepted only on a profile whose `repository_build` is enabled; the spawner
  then asks the build service to confirm it.
* `urlpath` (or Binder's `labpath`) names what this start opens, on any profile (and with no
  profiles at all); checked and normalised by `fancy_env.urlpaths` (relative, no traversal,
  no scheme), it becomes `Selection.urlpath`.

Form data: fields of profiles other than the chosen one are ignored (the HTML form posts
every profile's fields), as are fields that do not start with `profile`/`profile-option-`
(e.g. `_xsrf`), exactly like KubeSpawner. Fields of the chosen profile are checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import FancyError
from .profiles import UNLISTED_SUFFIX, Profile, ProfileOption, default_profile, visible_profiles
from .urlpaths import LABPATH, URLPATH, URLPathError, urlpath_from

#: the choice value KubeSpawner's form posts when the user picked the free-text entry
UNLISTED_CHOICE_VALUE = "unlisted-choice"
#: form field prefix for profile options
FORM_PREFIX = "profile-option-"
BUILD_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: longest free-text value accepted (an image name or similar)
MAX_VALUE_LENGTH = 1024

# The image reference grammar of the distribution project (reference/regexp.go):
# [host[:port]/]path-component(/path-component)*[:tag][@algorithm:hex]
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
_IMAGE_REFERENCE = re.compile(
    rf"(?:{_HOST}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
#: longest repository name (host and path) a registry accepts
MAX_IMAGE_NAME_LENGTH = 255


class ValidationError(FancyError, ValueError):
    """A refused start. `field` is the user_options key (or form field), `allowed` what the
    user may send instead (may be empty when nothing can be listed)."""

    def __init__(self, field: str, message: str, allowed: Sequence[str] = ()) -> None:
        self.allowed = tuple(allowed)
        super().__init__(400, message, field)
        self.args = (self.text,)

    @property
    def text(self) -> str:
        text = f"{self.field}: {self.message}"
        if self.allowed:
            text += f" Allowed: {', '.join(self.allowed)}."
        return text


@dataclass(frozen=True)
class Selection:
    """A validated start: every option of the profile resolved to a choice or a value."""

    profile: str
    choices: dict[str, str] = field(default_factory=dict)  # option -> choice key
    unlisted: dict[str, str] = field(default_factory=dict)  # option -> free-text value
    build_id: str | None = None
    urlpath: str = ""  # normalised; what this start opens ("" = the server's default)

    def to_user_options(self) -> dict[str, str]:
        """KubeSpawner-compatible user_options (what the hub saves for a restart)."""
        options: dict[str, str] = {"profile": self.profile}
        options.update(self.choices)
        for name, value in self.unlisted.items():
            options[name] = UNLISTED_CHOICE_VALUE
            options[name + UNLISTED_SUFFIX] = value
        if self.build_id:
            options["build_id"] = self.build_id
        if self.urlpath:
            options[URLPATH] = self.urlpath
        return options


def user_options_from_form(formdata: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """KubeSpawner's `_options_from_form`: form fields -> user_options (no validation yet).

    Fields: `profile`, `profile-option-<slug>--<option>[--unlisted-choice]`, `build_id`, and
    `urlpath` / `labpath` (what to open after launch).
    """
    first = {k: (v[0] if isinstance(v, list | tuple) and v else v) for k, v in formdata.items()}
    options: dict[str, Any] = {}
    slug = first.get("profile")
    if slug:
        options["profile"] = slug
        prefix = f"{FORM_PREFIX}{slug}--"
        for key, value in first.items():
            if isinstance(key, str) and key.startswith(prefix):
                options[key[len(prefix) :]] = value
    for key in ("build_id", URLPATH, LABPATH):
        if first.get(key):
            options[key] = first[key]
    return options


def form_field_name(field_name: str, profile: str | None) -> str:
    """The form field that carries a user_options key (for messages on the form page)."""
    if field_name in ("profile", "build_id", URLPATH, LABPATH) or not profile:
        return field_name
    return f"{FORM_PREFIX}{profile}--{field_name}"


def _string(user_options: Mapping[str, Any], key: str) -> str:
    value = user_options.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(key, f"must be a string, not {type(value).__name__}.")
    if len(value) > MAX_VALUE_LENGTH:
        raise ValidationError(key, f"is longer than {MAX_VALUE_LENGTH} characters.")
    return value


def _pick_profile(profiles: list[Profile], slug: str) -> Profile:
    if not profiles:
        raise ValidationError("profile", "no profile is available to you.")
    if not slug:
        chosen = default_profile(profiles)
        assert chosen is not None
        return chosen
    for profile in profiles:
        if profile.slug == slug:
            return profile
    raise ValidationError("profile", f"unknown profile {slug!r}.", [p.slug for p in profiles])


def _label(key: str) -> str:
    """A user-sent key, safe and readable in a message."""
    if not key.strip() or not key.isprintable() or len(key) > 80:
        return repr(key[:80])
    return key


def _check_keys(profile: Profile, user_options: Mapping[str, Any]) -> None:
    known = {"profile", "build_id", URLPATH, LABPATH}
    for option in profile.options:
        known.add(option.name)
        known.add(option.name + UNLISTED_SUFFIX)
    for key in user_options:
        if not isinstance(key, str):
            raise ValidationError(repr(key), "option names must be strings.", sorted(known))
        if key not in known:
            raise ValidationError(
                _label(key),
                f"is not an option of profile {profile.slug!r}; images, commands and "
                f"overrides come only from the admin's profiles.",
                sorted(known),
            )


def is_image_reference(text: str) -> bool:
    """Whether `text` is a valid image reference (`[host[:port]/]name[:tag][@digest]`)."""
    if not _IMAGE_REFERENCE.fullmatch(text):
        return False
    name = text.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return len(name) <= MAX_IMAGE_NAME_LENGTH


def _unlisted_image(option: ProfileOption, value: str) -> str | None:
    """The image the free text makes, when the option's override puts it into `image`."""
    template = option.unlisted.override.get("image")
    if isinstance(template, str) and "{value}" in template:
        return template.replace("{value}", value)
    return None


def _check_unlisted(option: ProfileOption, value: str, choice: str) -> None:
    key = option.name + UNLISTED_SUFFIX
    choice_keys = [c.key for c in option.choices]
    if not option.unlisted.enabled:
        raise ValidationError(key, f"free text is not allowed for {option.name!r}.", choice_keys)
    if choice and choice != UNLISTED_CHOICE_VALUE and choice not in choice_keys:
        raise ValidationError(option.name, f"unknown choice {choice!r}.", choice_keys)
    regex = option.unlisted.validation_regex
    if regex and not re.fullmatch(regex, value):
        message = option.unlisted.validation_message or f"must match {regex!r} as a whole."
        raise ValidationError(key, f"{value!r} is not allowed: {message}", [regex])
    image = _unlisted_image(option, value)
    if image is not None and not is_image_reference(image):
        raise ValidationError(
            key,
            f"{image!r} is not a valid image reference; use [registry[:port]/]name[:tag] in "
            "lower case, e.g. quay.io/org/image:1.0.",
        )


def _resolve_option(
    option: ProfileOption, user_options: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """Return (choice key, unlisted value) for one option; exactly one is set."""
    choice = _string(user_options, option.name)
    value = _string(user_options, option.name + UNLISTED_SUFFIX)
    choice_keys = [c.key for c in option.choices]
    if value:
        _check_unlisted(option, value, choice)
        return None, value
    if choice == UNLISTED_CHOICE_VALUE and option.choice(choice) is None:
        raise ValidationError(
            option.name + UNLISTED_SUFFIX, f"enter a value for {option.display_name!r}."
        )
    if choice:
        if option.choice(choice) is None:
            raise ValidationError(option.name, f"unknown choice {choice!r}.", choice_keys)
        return choice, None
    default = option.default_choice
    if default is None:
        raise ValidationError(
            option.name + UNLISTED_SUFFIX, f"enter a value for {option.display_name!r}."
        )
    return default.key, None


def _check_build_id(profile: Profile, build_id: str, profiles: list[Profile]) -> None:
    if not profile.repository_build.enabled:
        raise ValidationError(
            "build_id",
            f"profile {profile.slug!r} does not start servers built from repositories.",
            [p.slug for p in profiles if p.repository_build.enabled],
        )
    if not BUILD_ID_RE.fullmatch(build_id):
        raise ValidationError("build_id", "is not a build id (letters, digits, '.', '_', '-').")


def validate_user_options(
    profiles: Iterable[Profile],
    username: str,
    groups: Iterable[str],
    user_options: Any,
) -> Selection:
    """Validate KubeSpawner-style user_options (+ `build_id`) for this user.

    `profiles` is the full parsed profile_list; the user's view is computed here, so a hidden
    profile or choice is refused exactly like an unknown one.
    """
    all_profiles = tuple(profiles)
    if user_options is None:
        user_options = {}
    if not isinstance(user_options, Mapping):
        raise ValidationError("user_options", "must be an object.")
    try:
        urlpath = urlpath_from(user_options)
    except URLPathError as e:
        raise ValidationError(e.field, e.message) from None
    if not all_profiles:
        rest = sorted(str(k) for k in user_options if k not in (URLPATH, LABPATH))
        if rest:
            raise ValidationError(rest[0], "no profiles are configured on this hub.")
        return Selection(profile="", urlpath=urlpath)
    mine = visible_profiles(all_profiles, username, groups)
    profile = _pick_profile(mine, _string(user_options, "profile"))
    _check_keys(profile, user_options)
    choices: dict[str, str] = {}
    unlisted: dict[str, str] = {}
    for option in profile.options:
        choice, value = _resolve_option(option, user_options)
        if value is not None:
            unlisted[option.name] = value
        elif choice is not None:
            choices[option.name] = choice
    build_id = _string(user_options, "build_id") or None
    if build_id is not None:
        _check_build_id(profile, build_id, mine)
    return Selection(profile.slug, choices, unlisted, build_id, urlpath)


def validate_form(
    profiles: Iterable[Profile],
    username: str,
    groups: Iterable[str],
    formdata: Mapping[str, Sequence[Any]],
) -> Selection:
    """Validate form data (POST body or `?opt-` query); errors name the form field."""
    user_options = user_options_from_form(formdata)
    try:
        return validate_user_options(profiles, username, groups, user_options)
    except ValidationError as e:
        slug = user_options.get("profile")
        raise ValidationError(
            form_field_name(e.field, slug if isinstance(slug, str) else None),
            e.message,
            e.allowed,
        ) from None
