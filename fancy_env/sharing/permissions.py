"""The recipient's own permissions: a link is checked with the one validator
(`fancy_env.validation`) against the recipient's name and groups, exactly as a start would be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..validation import ValidationError, validate_user_options
from .links import LinkSpec, user_options

#: JupyterHub's words when a token lacks a scope (jupyterhub.scopes.needs_scope)
HUB_SCOPE_REFUSAL = "not authorized with current scopes"


def is_scope_refusal(status: int, message: str) -> bool:
    """A hub 403 that is about the service's token scopes, not the spawner's validator."""
    return status == 403 and (HUB_SCOPE_REFUSAL in message.lower() or message in ("", "Forbidden"))


#: stands in for the build id before the build exists; the validator checks only its shape
#: and that the profile builds from repositories (the spawner confirms the real one).
PLACEHOLDER_BUILD_ID = "pending-build"


def check_spec(
    profiles: Sequence[Any] | None, user: Mapping[str, Any] | None, spec: LinkSpec
) -> str | None:
    """None when `user` may launch `spec`, else the validator's message (field + allowed).

    Without profiles (the service was not given the hub's `profile_list`) nothing is checked
    here; the spawner still refuses at start and the link page shows its reason.
    """
    if not profiles or not user:
        return None
    options = user_options(spec, PLACEHOLDER_BUILD_ID if spec.repo else "")
    try:
        validate_user_options(profiles, str(user["name"]), user.get("groups") or [], options)
    except ValidationError as err:
        return err.text
    return None
