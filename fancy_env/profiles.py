"""Typed model of KubeSpawner's `profile_list` (pure: no I/O).

INTERFACE SKELETON — the field names below are the contract other parts code against
(`fancy_env.form`, `fancy_env.validation`, sharing). The parser fills them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
