"""`FancySpawnerMixin`: what FancyKubeSpawner and FancyDockerSpawner share.

Seams (KubeSpawner 7.1's, kept so code written against its API works unchanged):

* `options_from_form` (a callable trait; its default is `_options_from_form`) turns form data
  — a POST body or a `?opt-` query — into KubeSpawner-style `user_options`: synchronously, the
  same dict KubeSpawner returns, no validation (KubeSpawner's contract). JupyterHub's two
  form doors, `run_options_from_form` and `options_from_query`, validate that dict at once, so
  bad input re-renders the form with the reason and status 400 before anything starts;
* `load_user_options()` validates `user_options` again (REST starts and restarts never pass
  through the form), confirms a `build_id` with the build service, and applies the overrides
  in KubeSpawner's order. It runs at the start of `start()`.
* An `urlpath` (or `labpath`) in `user_options` becomes this start's `default_url` (JupyterHub
  passes it as `$JUPYTERHUB_DEFAULT_URL`; the single-user server redirects its root there),
  after the profile's overrides. It is for this start only: the next start begins from the
  configured `default_url` again, and it is removed from the options JupyterHub saves for a
  restart without options.

Refusals are `OptionsRefused`: a `ValueError` like KubeSpawner's (callers that catch it keep
working) and a JupyterHub `SpawnException` with a status (400 for bad options): the form page
shows the message, the REST API answers with the status and the message.
"""

from __future__ import annotations

import copy
import inspect
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jupyterhub.spawner import SpawnException
from traitlets import Any as AnyTrait
from traitlets import Integer, Unicode, default
from traitlets.config import Config, LazyConfigValue, LoggingConfigurable

from .buildref import BuildRefError, ConfirmedBuild
from .images import is_pinned_form
from .overrides import merge_into, override_keys, override_layers
from .profiles import Profile, ProfileConfigError, parse_profile_list, regex_warnings
from .tickets import BUILD_SCOPE
from .urlpaths import LABPATH, URLPATH
from .urlpaths import default_url as urlpath_default_url
from .validation import (
    Selection,
    ValidationError,
    form_field_name,
    user_options_from_form,
    validate_user_options,
)


class OptionsRefused(SpawnException, ValueError):
    """A start the config does not allow; the message is shown to the user as is.

    A `ValueError`, as KubeSpawner's `load_user_options()` raises for a bad choice or a free
    text failing the regex, and a `SpawnException` carrying the HTTP status.
    """

    def __init__(self, message: str, status_code: int = 400, reason: str = "invalid_options"):
        SpawnException.__init__(self, message, reason=reason, status_code=status_code)
        # shown by the spawn form page (jupyterhub.utils.format_exception) and the REST API
        self.jupyterhub_message = message

    @classmethod
    def from_validation(cls, error: ValidationError) -> OptionsRefused:
        return cls(error.text)


if TYPE_CHECKING:
    from jupyterhub.spawner import Spawner as _MixinBase
else:
    # not Spawner itself: Spawner.__init_subclass__ insists on start/stop/poll, which the
    # concrete spawner (KubeSpawner, DockerSpawner) provides after the mixin in the MRO
    _MixinBase = LoggingConfigurable


class FancySpawnerMixin(_MixinBase):
    """Profile validation, overrides and repository builds for a KubeSpawner-like spawner.

    Put it first: `class FancyKubeSpawner(FancySpawnerMixin, KubeSpawner)`. The concrete class
    must have a `profile_list` trait with KubeSpawner's schema.
    """

    builder_url = Unicode(
        "",
        config=True,
        help="""Path of the build service as the *browser* sees it, under the hub's base_url,
        e.g. `/jh/services/fancy-env/`. The spawn form talks to it to build images from
        repositories. `fancy_env.setup(c)` sets it; empty hides the repository field.""",
    )
    builder_api_url = Unicode(
        "",
        config=True,
        help="""URL of the build service as the *hub process* reaches it (internal), e.g.
        `http://127.0.0.1:8765/services/fancy-env/`. Used to confirm build references.""",
    )
    builder_api_token = Unicode(
        "",
        config=True,
        help="""API token the hub uses to call the build service (never sent to browsers).""",
    )
    ticket_secret = Unicode(
        "",
        config=True,
        help="""Secret shared with the build service to sign the short-lived form tickets the
        spawn form uses to call it. Keep it secret; change it to invalidate open forms.""",
    )
    ticket_ttl = Integer(
        900,
        min=30,
        config=True,
        help="""Lifetime of a form ticket in seconds. A user who leaves the form open longer
        must reload it before building. Shorter is safer; too short interrupts slow users.""",
    )
    build_confirmer = AnyTrait(
        None,
        allow_none=True,
        config=True,
        help="""Object with `async confirm(build_id, username) -> ConfirmedBuild` (see
        `fancy_env.buildref`) that vouches for a build: a start with a `build_id` uses the
        image it confirms, never one sent by the user. `fancy_env.setup(c)` sets an
        `HTTPBuildConfirmer`. None (default) refuses every start that carries a build_id
        with "repository builds are not configured".""",
    )
    image_prefix = Unicode(
        "",
        config=True,
        help="""Registry prefix every image built from a repository must start with, e.g.
        `127.0.0.1:5000/fancy-env/`. A confirmed image outside it is refused (defence in
        depth against a misconfigured build service). Empty refuses all built images.""",
    )

    _fancy_static_profiles: tuple[Any, tuple[Profile, ...]] | None = None
    fancy_selection: Selection | None = None
    fancy_confirmed_build: ConfirmedBuild | None = None
    #: default_url as it was before an urlpath replaced it for one start (None: not replaced)
    _fancy_default_url_before: str | None = None

    # --- profiles -------------------------------------------------------------------------

    async def fancy_profiles(self) -> tuple[Profile, ...]:
        """The parsed profile_list: parsed once when static, per call when callable."""
        static = self.fancy_static_profiles()
        if static is not None:
            return static
        raw = self.profile_list(self)
        if inspect.isawaitable(raw):
            raw = await raw
        return self._fancy_parse(raw)

    def fancy_static_profiles(self) -> tuple[Profile, ...] | None:
        """The parsed profile_list when it is static (no I/O, no await); None if callable."""
        source: Any = getattr(self, "profile_list", None)
        if callable(source):
            return None
        # parsed once per value: a new value (e.g. set by JupyterHub's group_overrides)
        # is parsed again
        cached = self._fancy_static_profiles
        if cached is None or cached[0] is not source:
            cached = self._fancy_static_profiles = (source, self._fancy_parse(source))
        return cached[1]

    def _fancy_parse(self, raw: Any) -> tuple[Profile, ...]:
        try:
            profiles = parse_profile_list(raw)
            self.fancy_check_profiles(profiles)
        except ProfileConfigError as e:
            self.log.error("Invalid profile_list: %s", e)
            raise OptionsRefused(
                f"The server options are misconfigured ({e}); please tell the hub admin.",
                status_code=500,
                reason="config",
            ) from None
        return profiles

    @classmethod
    def fancy_check_profiles(cls, profiles: tuple[Profile, ...]) -> None:
        """Spawner-specific config checks (raise ProfileConfigError). Override in subclasses."""

    @classmethod
    def fancy_config_warnings(cls, profiles: tuple[Profile, ...]) -> list[str]:
        """Warnings for a parsed profile_list: prefix regexes, and override keys that are not
        settings of this spawner (KubeSpawner would set them as plain attributes, to no
        effect — usually a typo)."""
        warnings = regex_warnings(profiles)
        traits = cls.class_traits()
        for i, profile in enumerate(profiles):
            for key, paths in override_keys(profile).items():
                if key not in traits:
                    base = profile.path or f"profile_list[{i}]"
                    warnings.append(
                        f"{base}.{paths[0]}: {key!r} is not a {cls.__name__} setting; "
                        f"it has no effect (a typo?)."
                    )
        return warnings

    def fancy_groups(self) -> set[str]:
        groups = getattr(self.user, "groups", None) or []
        return {g if isinstance(g, str) else str(g.name) for g in groups}

    # --- build rights ---------------------------------------------------------------------

    def fancy_user_scopes(self) -> frozenset[str]:
        """The user's expanded hub scopes (roles and groups resolved by JupyterHub)."""
        if getattr(self.user, "orm_user", None) is None:
            return frozenset()  # not inside a hub: no rights
        from jupyterhub.scopes import get_scopes_for

        return frozenset(get_scopes_for(self.user))

    def fancy_build_rights(self) -> tuple[frozenset[str], tuple[str, ...]] | None:
        """(scopes, groups) a form ticket carries, or None when this user may not build.

        A user may build when they hold `custom:fancy-env:build` (through any role) or are
        a hub admin (the build service treats admins as able to build too). The groups let
        the service check links made with the ticket like links made with a token."""
        admin = bool(getattr(self.user, "admin", False))
        if not admin and BUILD_SCOPE not in self.fancy_user_scopes():
            return None
        return frozenset({BUILD_SCOPE}), tuple(sorted(self.fancy_groups()))

    # --- the form -------------------------------------------------------------------------

    @default("options_form")
    def _options_form_default(self) -> Any:
        return self._fancy_render_options_form

    async def _fancy_render_options_form(self, spawner: Any = None) -> str:
        from .form import render_options_form
        from .profiles import visible_profiles

        profiles = await self.fancy_profiles()
        mine = visible_profiles(profiles, self.user.name, self.fancy_groups())
        if not mine:
            return ""
        return render_options_form(self, mine, dict(self.user_options or {}))

    @default("options_from_form")
    def _options_from_form_default(self) -> Any:
        return self._options_from_form

    def _options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """KubeSpawner 7.1's `_options_from_form`: form data -> user_options, synchronously,
        the same dict (plus our `build_id` field), no validation; see the module docstring."""
        return user_options_from_form(formdata)

    def run_options_from_form(self, form_data: dict[str, list[str]]) -> Any:
        """JupyterHub's form POST door: the trait's dict, validated before any start."""
        return self._fancy_checked(super().run_options_from_form(form_data))

    def options_from_query(self, query_data: dict[str, list[str]]) -> Any:
        """JupyterHub's `?opt-` link door: the trait's dict, validated before any start."""
        return self._fancy_checked(super().options_from_query(query_data))

    def _fancy_checked(self, options: Any) -> Any:
        """`options` once valid (OptionsRefused naming the form field otherwise):
        synchronously for a static profile_list, else a coroutine (JupyterHub awaits it)."""
        profiles = self.fancy_static_profiles()
        if profiles is None or inspect.isawaitable(options):
            return self._fancy_checked_later(options)
        self._fancy_check_form_options(profiles, options)
        return options

    async def _fancy_checked_later(self, options: Any) -> Any:
        if inspect.isawaitable(options):
            options = await options
        self._fancy_check_form_options(await self.fancy_profiles(), options)
        return options

    def _fancy_check_form_options(self, profiles: tuple[Profile, ...], options: Any) -> None:
        try:
            validate_user_options(profiles, self.user.name, self.fancy_groups(), options)
        except ValidationError as e:
            slug = options.get("profile") if isinstance(options, Mapping) else None
            field = form_field_name(e.field, slug if isinstance(slug, str) else None)
            raise OptionsRefused.from_validation(
                ValidationError(field, e.message, e.allowed)
            ) from None

    @default("apply_user_options")
    def _apply_user_options_default(self) -> Any:
        # JupyterHub 5.3+ hook, run before start(). user_options are validated and applied by
        # load_user_options() at the start of start() (KubeSpawner's seam); this no-op only
        # tells JupyterHub they are handled (else it logs "unhandled user_options").
        def handled_in_load_user_options(spawner: Any, user_options: dict[str, Any]) -> None:
            return None

        return handled_in_load_user_options

    # --- load_user_options ----------------------------------------------------------------

    async def load_user_options(self) -> None:
        """Validate `self.user_options`, confirm a build, apply overrides (KubeSpawner order)."""
        profiles = await self.fancy_profiles()
        try:
            selection = validate_user_options(
                profiles, self.user.name, self.fancy_groups(), self.user_options
            )
        except ValidationError as e:
            raise OptionsRefused.from_validation(e) from None
        self.fancy_selection = selection
        self._fancy_restore_default_url()
        if selection.profile:
            await self._fancy_apply_profile(profiles, selection)
        self._fancy_open_urlpath(selection.urlpath)

    async def _fancy_apply_profile(
        self, profiles: tuple[Profile, ...], selection: Selection
    ) -> None:
        profile = next(p for p in profiles if p.slug == selection.profile)
        image = None
        if selection.build_id is not None:
            image = await self._fancy_confirm_build(profile, selection.build_id)
        layers = override_layers(profile, selection, image)
        self.log.info(
            "Applying profile %r for %s (choices %s, free text %s, build %s)",
            profile.slug,
            self._log_name,
            selection.choices,
            sorted(selection.unlisted),
            selection.build_id,
        )
        for layer in layers:
            await self._fancy_apply_overrides(layer)

    # --- what this start opens --------------------------------------------------------------

    def _fancy_restore_default_url(self) -> None:
        """Undo a previous start's urlpath (a spawner object can serve several starts)."""
        if self._fancy_default_url_before is not None:
            self.default_url = self._fancy_default_url_before
            self._fancy_default_url_before = None

    def _fancy_open_urlpath(self, urlpath: str) -> None:
        """Make this start open `urlpath` (normalised by the validator), for this start only."""
        if not urlpath:
            return
        self._fancy_default_url_before = self.default_url
        self.default_url = urlpath_default_url(urlpath)
        self.log.info("Server %s opens %s for this start", self._log_name, self.default_url)
        orm = getattr(self, "orm_spawner", None)
        saved = getattr(orm, "user_options", None)
        if orm is not None and isinstance(saved, dict) and saved.keys() & {URLPATH, LABPATH}:
            # JupyterHub reuses the saved options for a start without options (a restart)
            orm.user_options = {k: v for k, v in saved.items() if k not in (URLPATH, LABPATH)}
            if self.db is not None:
                self.db.commit()

    async def _fancy_confirm_build(self, profile: Profile, build_id: str) -> str:
        if self.build_confirmer is None:
            raise OptionsRefused("build_id: repository builds are not configured on this hub.")
        if self.fancy_build_rights() is None:
            raise OptionsRefused(
                f"build_id: starting a server built from a repository needs the scope "
                f"{BUILD_SCOPE}; ask your hub admin.",
                status_code=403,
            )
        try:
            build = await self.build_confirmer.confirm(build_id, self.user.name)
        except BuildRefError as e:
            raise OptionsRefused(f"build_id: {e.reason}", status_code=e.status) from None
        patterns = profile.repository_build.allowed_repos
        if patterns and not any(re.fullmatch(p, build.repo) for p in patterns):
            raise OptionsRefused(
                f"build_id: repository {build.repo!r} is not allowed for profile {profile.slug!r}."
            )
        if not self.image_prefix or not build.image.startswith(self.image_prefix):
            self.log.error(
                "Build %s image %r is outside image_prefix %r",
                build_id,
                build.image,
                self.image_prefix,
            )
            raise OptionsRefused("build_id: the build's image is not from this hub's registry.")
        self.fancy_confirmed_build = build
        # pinned: a later push to the tag cannot change what this confirmed build launches
        launch = build.launch_image or build.image
        if not is_pinned_form(build.image, build.digest, launch):
            raise OptionsRefused("build_id: the build service named an unexpected image.")
        self.log.info("Build %s launches %s", build_id, launch)
        return launch

    async def _fancy_apply_overrides(self, overrides: dict[str, Any]) -> None:
        """KubeSpawner's `_apply_overrides`: callables evaluated (awaited if needed), dicts
        merged into dict traits (None removes a key), other values replace the trait."""
        for key, value in overrides.items():
            if callable(value):
                value = value(self)
                if inspect.isawaitable(value):
                    value = await value
            current = getattr(self, key, None)
            if isinstance(value, dict) and isinstance(current, dict):
                merged = copy.deepcopy(current)
                merge_into(merged, value)
                setattr(self, key, merged)
            else:
                setattr(self, key, value)


# --- start-up check ------------------------------------------------------------------------


def configured_profile_list(config: Config, spawner_class: Any) -> Any:
    """The profile_list a spawner of this class would get from `config` (traitlets rules)."""
    value: Any = spawner_class.class_traits()["profile_list"].default()
    for name in spawner_class.section_names():
        if config._has_section(name) and "profile_list" in config[name]:
            found = config[name]["profile_list"]
            value = (
                found.get_value(copy.deepcopy(value))
                if isinstance(found, LazyConfigValue)
                else found
            )
    return value


def check_config(config: Config, spawner_class: type | None = None) -> list[str]:
    """Check a hub config's profile_list; raise ProfileConfigError, return warnings.

    `spawner_class` defaults to `config.JupyterHub.spawner_class` when it is one of ours.
    A callable profile_list is checked when it is first called (errors then name the path).
    """
    if spawner_class is None:
        spawner_class = _configured_spawner_class(config)
    if spawner_class is None or not issubclass(spawner_class, FancySpawnerMixin):
        return []
    raw = configured_profile_list(config, spawner_class)
    if callable(raw):
        return []
    profiles = parse_profile_list(raw)
    spawner_class.fancy_check_profiles(profiles)
    return spawner_class.fancy_config_warnings(profiles)


def _configured_spawner_class(config: Config) -> type | None:
    if not config._has_section("JupyterHub") or "spawner_class" not in config.JupyterHub:
        return None
    value = config.JupyterHub.spawner_class
    if isinstance(value, type):
        return value
    from jupyterhub.app import JupyterHub

    trait = JupyterHub.class_traits()["spawner_class"]
    try:
        return trait.validate(None, value)  # type: ignore[no-any-return,unused-ignore]
    except Exception:  # noqa: BLE001 - not importable here: the hub reports it itself
        return None


def install_startup_check() -> None:
    """Make a starting JupyterHub check profile_list before it opens its doors.

    Our module is imported by the hub while it loads its config or its entry points
    (`spawner_class = "fancy-docker"`, `from fancy_env import …`); this wraps
    `JupyterHub.init_hub`, a step that runs after the whole config is loaded. A broken
    profile_list then stops the hub with the exact path, and each prefix-regex warning is
    logged. The wrapper does nothing for other spawner classes, and nothing is wrapped when
    `jupyterhub.app` is not loaded (we are not inside a hub).
    """
    app_module = sys.modules.get("jupyterhub.app")
    if app_module is None:
        return
    hub_class = app_module.JupyterHub
    original = hub_class.init_hub
    if getattr(original, "_fancy_env_startup_check", False):
        return

    def init_hub(app: Any) -> None:
        cls = app.spawner_class
        if isinstance(cls, type) and issubclass(cls, FancySpawnerMixin):
            try:
                warnings = check_config(app.config, cls)
            except ProfileConfigError as e:
                # exit like JupyterHub does on bad config: one clear line, no traceback
                app.log.critical("fancy_env: invalid profile_list: %s", e)
                app.exit(1)
            for warning in warnings:
                app.log.warning("fancy_env: %s", warning)
        original(app)

    init_hub._fancy_env_startup_check = True  # type: ignore[attr-defined]
    hub_class.init_hub = init_hub


install_startup_check()
