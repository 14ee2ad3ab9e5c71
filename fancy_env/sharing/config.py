"""Admin options for sharing (`c.FancyEnvSharing.*` in the build service's config) and the
context every sharing handler receives through `initialize(ctx=...)`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from traitlets import Bool, Integer, List, Unicode
from traitlets.config import LoggingConfigurable

from ..builder.port import Builds
from ..profiles import parse_profile_list
from .hubapi import HubAPI
from .links import LinkPolicy
from .store import LinkStore


class FancyEnvSharing(LoggingConfigurable):
    """Environment links and server share codes."""

    links_enabled = Bool(
        True,
        help="""Let users create environment links. When False, `POST api/links` answers 403
        and existing links still open (revoke them to stop them working).""",
    ).tag(config=True)

    allow_one_click_launch = Bool(
        False,
        help="""Allow links that launch at once, with no confirmation page ("autostart").
        Off by default: a link then always shows what it will launch and waits for a click.
        Turn on only if your users trust the links they receive; the recipient's own
        permissions still apply, and a running server is never replaced without asking.""",
    ).tag(config=True)

    link_default_expires_in = Integer(
        30 * 86400,
        allow_none=True,
        help="""Lifetime in seconds of a link created without `expires_in`. None = no expiry
        (only if `link_max_expires_in` is None too).""",
    ).tag(config=True)

    link_max_expires_in = Integer(
        365 * 86400,
        allow_none=True,
        help="""Longest lifetime in seconds a user may give a link. None = links may never
        expire (then `expires_in: 0` means "never").""",
    ).tag(config=True)

    link_rate_limit = Integer(
        20,
        help="""How many links one user may create per `link_rate_window` seconds (sliding
        window). Over the limit, `POST api/links` answers 429 with Retry-After. 0 turns link
        creation off.""",
    ).tag(config=True)

    link_rate_window = Integer(3600, help="Window in seconds for `link_rate_limit`.").tag(
        config=True
    )

    allow_named_servers = Bool(
        False,
        help="""Offer "launch as a new named server" when the recipient's default server is
        already running. Set to the same value as `c.JupyterHub.allow_named_servers`;
        `fancy_env.setup(c)` copies it when sharing is configured from the hub config.""",
    ).tag(config=True)

    named_server_limit_per_user = Integer(
        0,
        help="""Same as `c.JupyterHub.named_server_limit_per_user` (0 = no limit): the named
        server choice is hidden once the recipient has that many.""",
    ).tag(config=True)

    stop_timeout = Integer(
        120,
        help="""Seconds to wait for a running server to stop when the recipient chooses
        "stop it and launch" before the page reports that the stop is still pending.""",
    ).tag(config=True)

    share_code_default_expires_in = Integer(
        86400,
        help="""Default lifetime (seconds) offered on the "Share this server" page. The hub
        accepts 60 s to 365 days.""",
    ).tag(config=True)

    profile_list: List[Any] = List(
        help="""The hub's `profile_list` (the spawner's, parsed by the same model,
        fancy_env.profiles; `enable_sharing` copies it without `kubespawner_override`), so the
        link page can refuse, before anything starts, a profile or choice the recipient may
        not use. Sets and tuples are accepted where the spawner accepts them (e.g.
        `allowed_groups: {"staff"}`). When empty, the service does not pre-check; the spawner
        still refuses at start and the link page shows its reason. Only a list is accepted
        here: for a callable one, see `profile_list_is_callable`.""",
    ).tag(config=True)

    profile_list_is_callable = Bool(
        False,
        help="""The hub's `profile_list` is a callable (KubeSpawner allows it): the service
        cannot evaluate it, so it checks no profile, choice or access list itself (the
        spawner does, at launch, and the link page shows its refusal) and logs so at start.
        Set by `enable_sharing`.""",
    ).tag(config=True)

    def profiles(self) -> tuple[Any, ...]:
        """The parsed profile_list (fancy_env.profiles.Profile); logs what is not checked."""
        if self.profile_list_is_callable:
            self.log.warning(
                "the hub's profile_list is a callable: the link service checks no profile, "
                "choice or group itself; the spawner checks each launch"
            )
            return ()
        if not self.profile_list:
            self.log.info("no profile_list given: the link service checks no profile itself")
        return parse_profile_list(self.profile_list)

    hub_template_paths: List[str] = List(
        Unicode(),
        help="""The hub's `c.JupyterHub.template_paths` (`enable_sharing` copies them), searched
        before the installed jupyterhub package's templates for the `page.html` the sharing
        pages extend, so a customised hub page (logo, links) shows on them too. Directories
        missing where the service runs are skipped.""",
    ).tag(config=True)

    hub_api_url = Unicode(
        help="The hub REST API URL (default: $JUPYTERHUB_API_URL, set for managed services).",
    ).tag(config=True)

    def policy(self) -> LinkPolicy:
        return LinkPolicy(
            default_expires_in=self.link_default_expires_in,
            max_expires_in=self.link_max_expires_in,
            allow_autostart=self.allow_one_click_launch,
            rate_limit=self.link_rate_limit if self.links_enabled else 0,
            rate_window=self.link_rate_window,
        )


def _hub_prefix(service_prefix: str) -> str:
    """The hub's public prefix (`<base_url>hub/`). Managed services are not told the base_url,
    but their prefix is `<base_url>services/<name>/`."""
    base = os.environ.get("JUPYTERHUB_BASE_URL")
    if not base:
        head, sep, _ = service_prefix.rpartition("services/")
        base = head if sep else "/"
    return base.rstrip("/") + "/hub/"


@dataclass
class SharingContext:
    """Everything the sharing handlers need besides the web context (`initialize(ctx=…)`)."""

    config: FancyEnvSharing
    store: LinkStore
    hub: HubAPI
    builds: Builds  # the builds layer, through its small typed interface
    prefix: str  # service prefix, e.g. /services/fancy-env/
    hub_prefix: str  # public hub prefix, e.g. /hub/ or /jh/hub/
    profiles: Any = None  # Sequence[fancy_env.profiles.Profile] when the service knows them

    @classmethod
    async def create(
        cls,
        config: FancyEnvSharing,
        builds: Builds,
        db_url: str,
        prefix: str,
        hub_prefix: str | None = None,
        profiles: Any = None,
        engine: Any = None,
    ) -> SharingContext:
        """`engine`: an open asyncio engine on `db_url` to share (the build service's)."""
        hub_api = config.hub_api_url or os.environ.get("JUPYTERHUB_API_URL", "")
        if not hub_api:
            raise ValueError("FancyEnvSharing.hub_api_url or $JUPYTERHUB_API_URL is required")
        if hub_prefix is None:
            hub_prefix = _hub_prefix(prefix)
        return cls(
            config=config,
            store=await LinkStore.open(db_url, engine=engine),
            hub=HubAPI(hub_api),
            builds=builds,
            prefix=prefix if prefix.endswith("/") else prefix + "/",
            hub_prefix=hub_prefix,
            profiles=profiles,
        )
