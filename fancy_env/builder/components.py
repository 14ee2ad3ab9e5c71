"""Which executor runs builds and which cache checker says "already built": chosen by class.

`BuilderApp.executor_class` and `BuilderApp.cache_checker_class` are `ComponentType` traits
(traitlets `Type`, like JupyterHub's `EntryPointType` for authenticators and spawners). Each
accepts a class, an import string (`pkg.mod.Class` or `pkg.mod:Class`) or a name registered
in an entry-point group:

- `fancy_env.executors`: `docker`, `kubernetes`, `fake`;
- `fancy_env.cache_checkers`: `registry`, `engine`, `table`.

The names of this package are also known without installed metadata (a source checkout), from
`BUILTIN_EXECUTORS` / `BUILTIN_CHECKERS`, which pyproject.toml declares identically (a test
checks it). A bad value is a `TraitError` naming the trait and the names allowed.

The cache check belongs to the registry config, not to the executor: by default `registry`
when `registry_url` is set (the image is pushed there), else `engine` (the local engine's
images); the fake executor, which makes no image anywhere, defaults to `table` (the build
database). A cache checker class of another package provides
`from_app(app, store, credential) -> checker` (a classmethod); the checker has
`async exists(image) -> bool` and, if it speaks to a registry, `async auth_headers(repo)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from traitlets import TraitError, Type, import_item

from .executors import EXECUTORS
from .registry import (
    EngineChecker,
    LocalCopyChecker,
    RegistryChecker,
    RememberingChecker,
    TableChecker,
)

EXECUTOR_GROUP = "fancy_env.executors"
CHECKER_GROUP = "fancy_env.cache_checkers"
BUILTIN_EXECUTORS = EXECUTORS  # docker, kubernetes, fake
BUILTIN_CHECKERS = {
    "registry": "fancy_env.builder.registry:RegistryChecker",
    "engine": "fancy_env.builder.registry:EngineChecker",
    "table": "fancy_env.builder.registry:TableChecker",
}


def _load(target: str) -> Any:
    return import_item(target.replace(":", "."))


class ComponentType(Type):
    """A `Type` trait that also takes a name from an entry-point group (or the built-ins)."""

    def __init__(
        self,
        *args: Any,
        entry_point_group: str,
        builtin: Mapping[str, str],
        default_text: str = "",
        **kwargs: Any,
    ) -> None:
        self.entry_point_group = entry_point_group
        self.builtin = dict(builtin)
        self.default_text = default_text  # the reference's default, for a computed one
        self._own_help = ""
        super().__init__(*args, **kwargs)

    def default_value_repr(self) -> str:
        return self.default_text or str(super().default_value_repr())

    @property
    def help(self) -> str:
        names = ", ".join(f"'{k}' ({v})" for k, v in sorted(self.names().items()))
        return f"{self._own_help} Names ({self.entry_point_group} entry points): {names}."

    @help.setter
    def help(self, value: str) -> None:
        self._own_help = value.strip()

    def names(self) -> dict[str, str]:
        """Name -> `module:attr`: the built-ins, then installed entry points (which win)."""
        found = {ep.name.lower(): ep.value for ep in entry_points(group=self.entry_point_group)}
        return {**self.builtin, **found}

    def _resolve_string(self, string: str) -> Any:
        return _load(self.names().get(string.lower(), string))

    def _refuse(self, obj: Any, value: Any, why: str) -> TraitError:
        owner = type(obj).__name__ if obj is not None else "BuilderApp"
        allowed = ", ".join(sorted(self.names()))
        return TraitError(
            f"{owner}.{self.name}: {value!r} {why}; give one of the names {allowed}, "
            f"an import string (pkg.module.Class) or a class"
        )

    def validate(self, obj: Any, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = self._resolve_string(value)
            except Exception as e:  # noqa: BLE001 - any import failure is a config error
                raise self._refuse(
                    obj, value, f"is not a known name nor importable ({e})"
                ) from None
        klass = self.klass if isinstance(self.klass, type) else object
        if not (isinstance(value, type) and issubclass(value, klass)):
            raise self._refuse(obj, value, f"is not a subclass of {klass.__name__}")
        return value


# --- the cache checker of an app ------------------------------------------------------------


def _is(cls: Any, target: str) -> bool:
    """`cls` is a subclass of the class at `target` (imported only when needed)."""
    return isinstance(cls, type) and issubclass(cls, _load(target))


def is_fake_executor(app: Any) -> bool:
    """The fake executor makes no image: no engine or registry to check or clean up."""
    return _is(app.executor_class, BUILTIN_EXECUTORS["fake"])


def default_checker_class(app: Any) -> type:
    """By the registry config: `registry` when images are pushed, else `engine`."""
    if is_fake_executor(app):
        return TableChecker
    return RegistryChecker if app.registry_url else EngineChecker


def _registry(app: Any, store: Any, credential: Any) -> Any:
    if not app.registry_url:
        raise SystemExit(
            "BuilderApp.cache_checker_class is 'registry' but no registry is configured "
            "(BuilderApp.registry_url, or an image_prefix naming a registry host)"
        )
    source = "BuilderApp.registry_credentials_file" + (
        f" ({app.registry_credentials_file})" if app.registry_credentials_file else ""
    )
    checker: Any = RegistryChecker(app.registry_url, credential, source)
    if _is(app.executor_class, BUILTIN_EXECUTORS["docker"]):
        # servers start from this engine's copy: it must have it too (pulled if missing)
        checker = LocalCopyChecker(checker, EngineChecker(app.docker_socket))
    return checker


FACTORIES: dict[type, Callable[[Any, Any, Any], Any]] = {
    RegistryChecker: _registry,
    EngineChecker: lambda app, store, credential: EngineChecker(app.docker_socket),
    TableChecker: lambda app, store, credential: TableChecker(store),
}


def make_checker(app: Any, store: Any, credential: Any = None) -> Any:
    """The app's cache checker (remembering found images for `cache_check_ttl` seconds)."""
    cls = app.cache_checker_class
    factory = FACTORIES.get(cls)
    if factory is not None:
        checker = factory(app, store, credential)
    elif hasattr(cls, "from_app"):
        checker = cls.from_app(app, store, credential)
    else:
        raise SystemExit(
            f"BuilderApp.cache_checker_class {cls.__module__}.{cls.__qualname__} has no "
            "from_app(app, store, credential) classmethod to make it"
        )
    if app.cache_check_ttl > 0:
        checker = RememberingChecker(checker, app.cache_check_ttl)
    return checker


def make_executor(app: Any, credential: Any = None) -> Any:
    """The app's executor, given the repository policy and the registry's credential."""
    executor = app.executor_class(parent=app)
    if hasattr(executor, "repo_policy"):  # executors that fetch check every URL with it
        executor.repo_policy = app.make_policy()
    if credential is not None and app.registry_url:
        executor.registry_credentials = credential.engine_auth(app.registry_url)
    return executor
