"""The build service application: traits, start-up, the tornado server.

Run by JupyterHub as the managed service `fancy-env` (see `fancy_env.setup(c)`); it listens
where `JUPYTERHUB_SERVICE_URL` says, under `JUPYTERHUB_SERVICE_PREFIX`, and needs no config
beyond what the hub gives it. Options go in `fancy_env_builder_config.py` (or the command line,
`--BuilderApp.max_concurrent_builds=4`).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from tornado.httpserver import HTTPServer
from tornado.web import Application as WebApplication
from traitlets import Bool, Bytes, Enum, Float, Int, List, Set, Unicode, default
from traitlets.config import Application, Config

from .. import configdata, migrate
from .._version import __version__
from ..dbengine import private_sqlite_file
from ..hubconfig import CONFIG_ENV, SERVICE_FILE_ENV, read_service_file
from ..images import check_prefix
from ..repos import RepoPolicy
from ..tickets import secret_bytes
from ..web.context import WebContext
from . import components, handlers
from .components import (
    BUILTIN_CHECKERS,
    BUILTIN_EXECUTORS,
    CHECKER_GROUP,
    EXECUTOR_GROUP,
    ComponentType,
)
from .credentials import attach_credentials
from .db import Store
from .executors import Executor
from .gc import Collector, GCConfig, LinksInUse, checker_auth
from .gc_handler import gc_schedule
from .handlers import StreamSettings
from .registry import registry_url_for
from .registry_auth import (
    RegistryConfigError,
    RegistryCredential,
    credential_for,
    parse_docker_config,
    registry_host,
)
from .retention import RetentionPolicy
from .routes import Route, build_routes
from .service import BuildService
from .serviceconfig import ServiceConfig

BUILD_SCOPE = "custom:fancy-env:build"
ADMIN_SCOPE = "custom:fancy-env:admin"


class BuilderApp(Application):
    name = "fancy-env-builder"
    version = __version__
    description = "The fancy_env build service: repo2docker builds for JupyterHub users."
    aliases = {"config": "BuilderApp.config_file", "log-level": "Application.log_level"}

    config_file = Unicode(
        "fancy_env_builder_config.py", help="Config file to load if it exists."
    ).tag(config=True)

    service_name = Unicode(help="JupyterHub service name (from JUPYTERHUB_SERVICE_NAME).").tag(
        config=True
    )
    bind_url = Unicode(
        help="Where to listen (from JUPYTERHUB_SERVICE_URL; default http://127.0.0.1:8765)."
    ).tag(config=True)
    service_prefix = Unicode(
        help="URL prefix of every route "
        "(from JUPYTERHUB_SERVICE_PREFIX; default /services/<name>/)."
    ).tag(config=True)
    db_url = Unicode(
        "sqlite:///fancy-env-builds.sqlite",
        help="SQLAlchemy URL of the build database (builds, logs, images): `sqlite:////path` "
        "(the default, opened with aiosqlite) or `postgresql+psycopg://user@host/db` (psycopg "
        "3's asyncio mode, the `postgres` extra) when the service runs on a cluster.",
    ).tag(config=True)
    executor_class = ComponentType(
        "docker",
        klass=Executor,
        entry_point_group=EXECUTOR_GROUP,
        builtin=BUILTIN_EXECUTORS,
        help="The executor running builds: a name ('docker': repo2docker on the local engine; "
        "'kubernetes': build pods; 'fake': scripted, for demos and tests), an import string "
        "of an Executor subclass, or the class.",
    ).tag(config=True)
    cache_checker_class = ComponentType(
        klass=object,
        entry_point_group=CHECKER_GROUP,
        builtin=BUILTIN_CHECKERS,
        default_text="(computed: 'registry', 'engine' or 'table')",
        help="What answers \"is this image already built?\": 'registry' (the registry of "
        "image_prefix / registry_url, with registry_credentials_file; with the docker "
        "executor the local engine must have a copy too, pulled if missing), 'engine' (the "
        "local engine's images), 'table' (the build database). Default: 'registry' when a "
        "registry is configured, else 'engine' ('table' for the fake executor). Or a class "
        "with from_app(app, store, credential), see docs/builder.md.",
    ).tag(config=True)
    image_prefix = Unicode(
        "fancy-env/",
        help="Prefix of every image name, e.g. 'registry.example.org/fancy-env/'. When it starts "
        "with a registry host, images are pushed there and the cache asks the registry.",
    ).tag(config=True)
    # ---- registry (the cache check and the push; docs/builder.md "Registry credentials") ----
    registry_url = Unicode(
        help="Registry API base URL for cache checks (default: derived from image_prefix; "
        "http for loopback, https otherwise). Empty when images stay on the local engine."
    ).tag(config=True)
    registry_credentials_file = Unicode(
        "",
        help='Path of a Docker config JSON (`{"auths": {"<host>": {"auth": '
        "base64(user:password)}}}`, the format of ~/.docker/config.json and of "
        "kubernetes.io/dockerconfigjson Secrets; mode 0600) with the registry's credentials. "
        "The build service uses them for the cache check and hands them to repo2docker's push "
        "(its process environment only: never a build argument, never the build container, "
        "never a global `docker login`). scripts/setup.sh writes one for its registry: "
        "$FANCY_ENV_STATE/registry-auth.json. Empty: anonymous, or registry_username.",
    ).tag(config=True)
    registry_username = Unicode(
        "",
        help="Registry user, when the credentials are not in registry_credentials_file "
        "(that file wins when both are set).",
    ).tag(config=True)
    registry_password = Unicode(
        "", help="Password or access token of registry_username (prefer the file)."
    ).tag(config=True)

    def registry_credential(self) -> RegistryCredential | None:
        """The credential for the registry of image_prefix (file first, then the traits)."""
        if self.registry_credentials_file:
            path = self.registry_credentials_file
            try:
                mode = os.stat(path).st_mode
                with open(path, encoding="utf-8") as f:
                    credentials = parse_docker_config(f.read())
            except (OSError, RegistryConfigError) as e:
                raise SystemExit(f"BuilderApp.registry_credentials_file {path}: {e}") from None
            if mode & 0o077:
                self.log.warning("%s is readable by others: chmod 600 it", path)
            credential = credential_for(credentials, self.registry_url)
            if credential is None:
                raise SystemExit(
                    f"BuilderApp.registry_credentials_file {path} has no auths entry for "
                    f"{registry_host(self.registry_url)!r} (entries: {sorted(credentials)})"
                )
            return credential
        if self.registry_username:
            return RegistryCredential(self.registry_username, self.registry_password)
        return None

    docker_socket = Unicode(
        "/var/run/docker.sock", help="The local engine's API socket (Docker or podman)."
    ).tag(config=True)
    max_concurrent_builds = Int(2, help="Builds running at once, for all users.").tag(config=True)
    max_builds_per_user = Int(1, help="Builds running at once for one user.").tag(config=True)
    build_timeout = Float(3600, help="A build running longer than this (seconds) fails.").tag(
        config=True
    )
    silence_timeout = Float(
        600, help="A build with no log output for this many seconds fails."
    ).tag(config=True)
    git_timeout = Float(30, help="Timeout (seconds) of `git ls-remote` resolving a ref.").tag(
        config=True
    )
    ref_resolver = Enum(
        ["http", "git"],
        default_value="http",
        help="How refs are resolved: 'http' reads the ref advertisement in-process (one HTTP "
        "request, about half the time of a `git ls-remote`; same-origin redirects only; falls "
        "back to git for anything unusual); 'git' always runs `git ls-remote` as a subprocess.",
    ).tag(config=True)
    keepalive_interval = Float(
        15, help="Seconds between keepalive comments on idle event streams."
    ).tag(config=True)
    event_batch_interval = Float(
        0.05,
        help="After waking for a new event, an event stream waits this long (seconds) to send "
        "the lines that follow in the same write. Bounds the work per watcher when logs are "
        "fast; adds at most this much latency. 0 sends every line at once.",
    ).tag(config=True)
    allowed_http_hosts = Set(
        Unicode(),
        help="Hosts ('host' or 'host:port', '*' = any) that may be fetched over plain http.",
    ).tag(config=True)
    allow_private_hosts = Bool(
        False,
        help="Allow repository hosts that resolve to loopback, private, link-local or multicast "
        "addresses. Leave off unless every user is trusted: it opens the internal network.",
    ).tag(config=True)
    allowed_private_hosts = Set(
        Unicode(), help="Hosts ('host' or 'host:port') allowed even if they resolve privately."
    ).tag(config=True)
    allowed_repos = List(
        Unicode(), help="Full-match regexes on the normalised URL; if set, a repo must match one."
    ).tag(config=True)
    denied_repos = List(
        Unicode(), help="Full-match regexes on the normalised URL of refused repositories."
    ).tag(config=True)
    ticket_secret = Bytes(
        help="Secret shared with the spawner for form tickets (default: `ticket_secret` of the "
        "0600 file $FANCY_ENV_SERVICE_FILE that fancy_env.setup(c) writes, else "
        "$FANCY_ENV_TICKET_SECRET; read as hex, or as UTF-8 text if not hex). Never put it in "
        "the service's `environment`: JupyterHub stores that in its database."
    ).tag(config=True)
    admin_users = Set(
        Unicode(), help="Users treated as admins of this service, besides JupyterHub admins."
    ).tag(config=True)
    build_scope = Unicode(
        BUILD_SCOPE,
        help="JupyterHub scope needed to build ('' = any authenticated user). fancy_env.setup(c) "
        "grants it to every user.",
    ).tag(config=True)
    admin_scope = Unicode(
        ADMIN_SCOPE, help="Scope that makes a token an admin of this service."
    ).tag(config=True)
    metrics_require_auth = Bool(
        False, help="Require authentication on GET metrics (Prometheus scrapers then need a token)."
    ).tag(config=True)
    cache_check_ttl = Float(
        300,
        help="Seconds an image found in the registry (or engine) is remembered without asking "
        "again. Image names are commit-addressed, so this only matters if images get pruned; "
        "0 asks every time.",
    ).tag(config=True)
    # ---- image retention (fancy_env.builder.gc; docs/builder.md "Image retention") ------
    gc_keep_per_repo = Int(
        3,
        min=1,
        help="Image retention: keep the newest this many images of each repository (by build "
        "time). Older ones are removed by `fancy-env gc` and the schedule (gc_interval), "
        "except images in use (running servers, active environment links, builds in progress "
        "or just requested, containers on the engine).",
    ).tag(config=True)
    gc_max_unused_days = Float(
        30,
        min=0,
        help="Image retention: also remove images not built or requested for this many days, "
        "even among the newest gc_keep_per_repo (never an image in use). 0 turns this off.",
    ).tag(config=True)
    gc_interval = Float(
        0,
        min=0,
        help="Seconds between retention runs inside the service (0 = never: run "
        "`fancy-env gc` yourself). A run removes from the engine and the registry.",
    ).tag(config=True)
    gc_recent_seconds = Float(
        600,
        min=0,
        help="Images requested (built or found in the cache) in the last this many seconds "
        "count as in use: the launch that asked for them may still be starting.",
    ).tag(config=True)
    gc_local_engine = Bool(
        True,
        help="Image retention also applies to the local engine (docker_socket): its images "
        "are removed and its containers count as in use. Turn off when the service has no "
        "engine of its own (build pods on Kubernetes).",
    ).tag(config=True)
    gc_registry_config = Unicode(
        "",
        help="Path of the registry's own config file when it runs on this machine (Debian "
        "`docker-registry`, as `fancy-env up` and scripts/setup.sh start it): after deleting "
        "manifests, retention runs `docker-registry garbage-collect --delete-untagged` on it to "
        "free the blobs. Empty: no garbage collection (on a cloud registry it is the "
        "provider's job). The registry needs `storage.delete.enabled: true`.",
    ).tag(config=True)
    gc_registry_command = List(
        Unicode(),
        ["docker-registry", "garbage-collect"],
        help="The registry's garbage-collection command (the config path is appended).",
    ).tag(config=True)
    flush_interval = Float(
        0.02,
        help="Log lines are stored this many seconds after they are emitted, in one batch with "
        "the lines that follow; watchers see a line once it is stored.",
    ).tag(config=True)

    # ---- limits (docs/builder.md "Limits"; 0 turns a limit off) ------------------------------
    max_queued_per_user = Int(
        5,
        help="Builds one user may have queued or running at once (admins included; requests "
        "that join an identical build or are answered from the cache do not count). Beyond it "
        "`POST api/builds` answers 429 with Retry-After. Raise it for users who script many "
        "builds; 0 = no limit.",
    ).tag(config=True)
    queue_retry_after = Int(
        30, help="Seconds in the Retry-After header of a 429 for max_queued_per_user."
    ).tag(config=True)
    max_log_bytes = Int(
        4 * 1024 * 1024,
        help="Bytes of build output stored per build (and kept in memory, and replayed to "
        "every watcher). Beyond it one line says the log was cut and later lines are dropped; "
        "phase changes and the result are still stored, and the record says `log_truncated`. "
        "0 = no limit.",
    ).tag(config=True)
    max_log_lines = Int(
        20000,
        help="Lines of build output stored per build (each stored line costs about 100 bytes "
        "of database besides its text). Beyond it the log is cut as for max_log_bytes. "
        "0 = no limit.",
    ).tag(config=True)
    max_streams_per_user = Int(
        10,
        help="Event streams (`GET api/builds/<id>/events`) one user may hold open at once; "
        "beyond it 429. A browser tab watching a build holds one. 0 = no limit.",
    ).tag(config=True)
    max_body_bytes = Int(
        64 * 1024,
        help="Largest JSON request body (`POST api/builds`, `POST api/links`…); beyond it 413 "
        "naming `body`. The HTTP server refuses bodies over 16 times this before reading them "
        "(a bare 400 and a closed connection).",
    ).tag(config=True)
    max_json_depth = Int(
        32, help="Deepest nesting of arrays/objects accepted in a JSON request body (else 400)."
    ).tag(config=True)
    replay_page_lines = Int(
        500,
        help="A stored log is replayed to a watcher in pages of this many lines (one short "
        "query each), waiting for the client between pages, so replays never hold up other "
        "requests.",
    ).tag(config=True)
    replay_concurrency = Int(
        4,
        help="Stored-log replays that may send a page in the same turn of the event loop; "
        "the others wait their turn (first come, first served). Lower keeps other requests "
        "quicker while many watchers replay; higher replays faster on an idle service.",
    ).tag(config=True)
    replay_cache_bytes = Int(
        16 * 1024 * 1024,
        help="Bytes of finished builds' log pages kept serialised (as SSE) in memory, least "
        "recently used dropped first: watchers replaying the same log share each page, read "
        "from the database once. 0 = no cache (every watcher reads every page).",
    ).tag(config=True)
    freeze_startup_objects = Bool(
        True,
        help="Once the service listens, hand every object made during start-up (modules, "
        "config, the web app: about 120,000) to Python's permanent generation (`gc.freeze()`), "
        "so that the cyclic garbage collector's full collections skip them. Each full "
        "collection otherwise walks them all with the event loop held: 70-90 ms on a slow "
        "core, a stall every request in flight waits for.",
    ).tag(config=True)
    rebuild_interval = Float(
        300,
        help="Seconds between two rebuilds (`POST api/builds` with `rebuild: true`, or "
        "Rebuild in the form) of the same image by the same user, admins included; sooner, "
        "429 with Retry-After. A rebuild also counts towards max_queued_per_user. "
        "0 = no limit.",
    ).tag(config=True)
    # ---- end of limits -------------------------------------------------------------------

    @default("service_name")
    def _service_name(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_NAME", "fancy-env")

    @default("bind_url")
    def _bind_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8765")

    @default("service_prefix")
    def _service_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{self.service_name}/")

    @default("cache_checker_class")
    def _cache_checker_class(self) -> type:
        return components.default_checker_class(self)

    @default("registry_url")
    def _registry_url(self) -> str:
        return registry_url_for(self.image_prefix)

    # --- secrets and logs (issue 9): the service file, private files, redacted logs ------

    @default("ticket_secret")
    def _ticket_secret(self) -> bytes:
        return secret_bytes(self._service_file().get("ticket_secret") or "") or secret_bytes(
            os.environ.get("FANCY_ENV_TICKET_SECRET", "")
        )

    def _service_file(self) -> dict[str, Any]:
        """`$FANCY_ENV_SERVICE_FILE` (written 0600 by fancy_env.setup(c)), or {}."""
        path = os.environ.get(SERVICE_FILE_ENV)
        return read_service_file(path) if path else {}

    def _log_request(self, handler: Any) -> None:
        status = handler.get_status()
        quiet = handler.request.path.endswith(("/health", "/metrics")) and status < 400
        level = logging.DEBUG if quiet else logging.INFO if status < 500 else logging.ERROR
        self.log.log(
            level, "%s %s %s %.1fms", status, handler.request.method,
            self.redact(handler.request.path), 1000 * handler.request.request_time(),
        )  # fmt: skip

    #: what request log lines pass through (the service assembly redacts link codes)
    redact: Callable[[str], str] = staticmethod(str)

    def initialize(self, argv: list[str] | None = None) -> None:
        super().initialize(argv)
        migrate.log_to(self.log)  # schema upgrades at start show in the service log
        from_file = self._service_file().get("config")
        if from_file:  # written by fancy_env.setup(c); the config file and command line win
            self.update_config(Config(from_file))
        from_env = os.environ.get(CONFIG_ENV)
        if from_env:  # older hub configs (holds no secret)
            self.update_config(Config(configdata.loads(from_env)))
        if os.path.exists(self.config_file):
            self.load_config_file(self.config_file)
            self.update_config(self.cli_config)
        check_prefix(self.image_prefix)
        if not self.service_prefix.endswith("/"):
            self.service_prefix += "/"

    def make_executor(self, credential: RegistryCredential | None = None) -> Executor:
        return components.make_executor(self, credential)

    def make_policy(self) -> RepoPolicy:
        return RepoPolicy(
            allowed_http_hosts=frozenset(self.allowed_http_hosts),
            allow_private_hosts=self.allow_private_hosts,
            allowed_private_hosts=frozenset(self.allowed_private_hosts),
            allow_patterns=tuple(self.allowed_repos),
            deny_patterns=tuple(self.denied_repos),
        )

    def make_checker(self, store: Store, credential: RegistryCredential | None = None) -> Any:
        return components.make_checker(self, store, credential)

    async def make_service(self) -> BuildService:
        private_sqlite_file(self.db_url)  # 0600 (the state dir is 0700)
        store = await Store.open(self.db_url)
        policy = self.make_policy()
        config = ServiceConfig(
            image_prefix=self.image_prefix,
            push=bool(self.registry_url),
            max_concurrent=self.max_concurrent_builds,
            max_per_user=self.max_builds_per_user,
            build_timeout=self.build_timeout,
            silence_timeout=self.silence_timeout,
            git_timeout=self.git_timeout,
            ref_resolver=self.ref_resolver,
            flush_interval=self.flush_interval,
            max_queued_per_user=self.max_queued_per_user,
            queue_retry_after=self.queue_retry_after,
            max_log_bytes=self.max_log_bytes,
            max_log_lines=self.max_log_lines,
            max_streams_per_user=self.max_streams_per_user,
            replay_concurrency=self.replay_concurrency,
            replay_cache_bytes=self.replay_cache_bytes,
            rebuild_interval=self.rebuild_interval,
        )
        credential = self.registry_credential() if self.registry_url else None
        service = BuildService(
            store, self.make_executor(credential), self.make_checker(store, credential), policy,
            config, self.log,
        )  # fmt: skip
        await attach_credentials(self, service)  # users' forge tokens (private repositories)
        return service

    def make_collector(
        self, service: BuildService, links_in_use: LinksInUse | None = None
    ) -> Collector:
        """Image retention; `links_in_use` (sharing's active links) keeps their images."""

        real = not components.is_fake_executor(self)  # it touches no engine or registry
        config = GCConfig(
            image_prefix=self.image_prefix,
            policy=RetentionPolicy(self.gc_keep_per_repo, self.gc_max_unused_days),
            docker_socket=self.docker_socket if real and self.gc_local_engine else "",
            registry_url=self.registry_url if real else "",
            registry_gc_config=self.gc_registry_config,
            registry_gc_command=tuple(self.gc_registry_command),
            recent_seconds=self.gc_recent_seconds,
            hub_api_url=os.environ.get("JUPYTERHUB_API_URL", ""),
            hub_api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
        )
        return Collector(
            service.store, config, service.checker, lambda: set(service.by_image),
            checker_auth(service.checker), self.log, links_in_use,
        )  # fmt: skip

    def make_hub_auth(self) -> Any:
        if not os.environ.get("JUPYTERHUB_API_TOKEN"):
            return None
        from jupyterhub.services.auth import HubOAuth

        return HubOAuth(parent=self, cache_max_age=60)

    def make_web_context(self) -> WebContext:
        """Who may do what and how requests are authenticated, for every handler."""
        return WebContext(
            prefix=self.service_prefix,
            log=self.log,
            hub_auth=self.make_hub_auth(),
            ticket_secret=self.ticket_secret,
            service_name=self.service_name,
            service_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
            admin_users=frozenset(self.admin_users),
            build_scope=self.build_scope,
            admin_scope=self.admin_scope,
            access_scopes=frozenset({f"access:services!service={self.service_name}"}),
            max_body_bytes=self.max_body_bytes,
            max_json_depth=self.max_json_depth,
        )

    async def make_web_app(
        self,
        service: BuildService,
        web: WebContext | None = None,
        collector: Collector | None = None,
        extra_routes: Sequence[Route] = (),
    ) -> WebApplication:
        """The tornado application: `extra_routes` (the assembly's sharing routes) and the
        build API, each handler given its collaborators by `initialize()`."""
        web = web or self.make_web_context()
        self.collector = collector if collector is not None else self.make_collector(service)
        streams = StreamSettings(
            keepalive_interval=self.keepalive_interval,
            event_batch_interval=self.event_batch_interval,
            replay_page_lines=max(1, self.replay_page_lines),
        )
        routes = build_routes(web, service, streams, self.collector, self.metrics_require_auth)
        return WebApplication(
            [*extra_routes, *routes],
            cookie_secret=self._cookie_secret(),
            default_handler_class=handlers.NotFoundHandler,
            default_handler_args={"web": web, "service": service},
            log_function=self._log_request,
        )

    def server_max_body_size(self) -> int:
        """Bodies bigger than this are refused before they are read (handlers say more)."""
        return 16 * self.max_body_bytes if self.max_body_bytes > 0 else 100 * 1024 * 1024

    def _cookie_secret(self) -> bytes:
        # stable across restarts when there is a shared secret, so OAuth cookies survive
        if self.ticket_secret:
            return hashlib.sha256(b"fancy-env cookie secret\0" + self.ticket_secret).digest()
        return os.urandom(32)

    async def serve(self) -> None:
        service = await self.make_service()
        await service.start()
        url = urlsplit(self.bind_url)
        web_app = await self.make_web_app(service)
        server = HTTPServer(
            web_app, xheaders=True, idle_connection_timeout=75,
            max_body_size=self.server_max_body_size(),
        )  # fmt: skip
        server.listen(url.port or 80, url.hostname or "127.0.0.1")
        if self.freeze_startup_objects:
            gc.collect()  # what start-up left as garbage goes now, not frozen for good
            gc.freeze()
        self.log.info(
            "fancy-env build service on %s%s", self.bind_url.rstrip("/"), self.service_prefix
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        schedule = gc_schedule(self.collector, self.gc_interval, self.log)
        await stop.wait()
        if schedule is not None:
            schedule.cancel()
        server.stop()
        await service.stop()
        await service.store.close()

    def start(self) -> None:
        asyncio.run(self.serve())

    @default("log_level")
    def _log_level(self) -> int:
        return logging.INFO
