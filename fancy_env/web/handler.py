"""The one base handler of the service (build API, sharing pages and APIs, Binder pages).

Identity, in order: a form ticket (`X-Fancy-Env-Ticket`, only where `accepts_ticket`), the
service's own API token (the hub's spawners confirming builds), then JupyterHub (an API token
for scripts, the HubOAuth cookie for browsers). Scopes are decided here once (`Identity`:
admin, may build). Cookie-authenticated changes need JupyterHub's XSRF token. Errors come from
one family (`fancy_env.errors.FancyError`): JSON `{"status", "message", "field"?}` for the API,
the page template (`error_page`, given by the pages' base) for HTML pages; never a traceback.

Collaborators come through `initialize(web=WebContext, ...)` (the route's kwargs), never
through tornado's settings dict.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from tornado.web import HTTPError, RequestHandler

from .. import tickets
from ..errors import FancyError
from ..webheaders import set_security_headers
from ..webinput import int_param, parse_json_body
from .context import WebContext

SERVER_ERROR = "Something went wrong on our side; the service log has the details."
DATABASE_DOWN = (
    "the service's database is not answering just now; try again in a minute "
    "(the service log names the cause)"
)
#: seconds a client is asked to wait when the database is not answering
DATABASE_RETRY_AFTER = 30


def database_down(exc: BaseException | None) -> bool:
    """Whether `exc` says the database cannot be reached or used just now (connection lost or
    refused, pool exhausted, SQLite locked past its busy timeout): a 503, not a 500."""
    if isinstance(exc, OperationalError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclass(frozen=True)
class Identity:
    """Who sent the request and what they may do here (the one place scopes are read)."""

    name: str
    admin: bool
    can_build: bool
    via_cookie: bool = False
    groups: tuple[str, ...] = ()
    scopes: frozenset[str] = field(default_factory=frozenset)
    kind: str = "user"

    @property
    def model(self) -> dict[str, Any]:
        """A JupyterHub-like user model (what the validator and the pages read)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "admin": self.admin,
            "groups": list(self.groups),
            "scopes": sorted(self.scopes),
        }


class ServiceHandler(HubOAuthenticated, RequestHandler):
    """Base of every route of the service (see the module docstring)."""

    html_errors = False  # pages: errors as the page template; the API: JSON
    accepts_ticket = True  # the spawn form's ticket (pages take the hub cookie only)
    login_required = True  # False: anonymous requests are served (health, metrics)
    message_names_field = False  # JSON `message` as "field: message" (the sharing API's form)
    identity: Identity | None = None

    def initialize(self, web: WebContext, **_: Any) -> None:
        self.web = web
        if web.hub_auth is not None:
            self.hub_auth = web.hub_auth  # HubAuthenticated's public setter

    @property
    def prefix(self) -> str:
        return self.web.prefix

    @property
    def log(self) -> Any:
        return self.web.log

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        set_security_headers(self)

    def get_current_user(self) -> Any:
        return None  # set by prepare() from the identity (never HubAuthenticated's cache)

    # ---- identity ------------------------------------------------------------------------

    async def prepare(self) -> None:
        if self.request.method == "OPTIONS":
            return
        identity = await self.authenticate()
        if identity is None:
            if not self.login_required:
                return
            if self.request.method in ("GET", "HEAD") and self.wants_page():
                self.redirect(self.get_login_url())
                return
            raise FancyError(403, "authentication required (a JupyterHub token or login)")
        self.identity = identity
        self.current_user = identity.model

    def wants_page(self) -> bool:
        return self.html_errors or "text/html" in self.request.headers.get("Accept", "")

    async def authenticate(self) -> Identity | None:
        web = self.web
        ticket = self.request.headers.get(tickets.HEADER)
        if ticket and self.accepts_ticket:
            return self._ticket_identity(ticket)
        auth = self.request.headers.get("Authorization", "")
        if web.service_token and auth.lower().startswith(("token ", "bearer ")):
            if hmac.compare_digest(auth.split(" ", 1)[1].strip(), web.service_token):
                return Identity(f"service:{web.service_name}", True, True, kind="service")
        if web.hub_auth is None:
            return None
        try:
            model = await web.hub_auth.get_user(self, sync=False)
        except HTTPError as e:
            if e.status_code in (401, 403):
                raise
            raise FancyError(503, "JupyterHub could not be asked to check the token") from None
        return self._hub_identity(model) if model else None

    def _ticket_identity(self, ticket: str) -> Identity:
        """The rights the spawner put in the ticket (the same checks as an API token's)."""
        try:
            claims = tickets.verify_claims(self.web.ticket_secret, ticket)
            if tickets.BUILD_SCOPE not in claims.scopes:
                raise tickets.TicketError(f"ticket lacks the scope {tickets.BUILD_SCOPE}")
        except tickets.TicketError as err:
            raise FancyError(403, f"form ticket refused: {err}") from None
        admin = claims.user in self.web.admin_users or self.web.admin_scope in claims.scopes
        return Identity(claims.user, admin, True, False, tuple(claims.groups), claims.scopes)

    def _hub_identity(self, model: dict[str, Any]) -> Identity:
        web = self.web
        scopes = frozenset(model.get("scopes") or ())
        name, kind = str(model["name"]), str(model.get("kind") or "user")
        if kind == "service":
            admin = name == web.service_name
            name = f"service:{name}"
        else:
            admin = bool(model.get("admin")) or name in web.admin_users
        admin = admin or bool(scopes & {web.admin_scope, "admin:users"})
        can_build = admin or not web.build_scope or web.build_scope in scopes
        if not (can_build or scopes & web.access_scopes):
            raise FancyError(403, f"the scope {web.build_scope} is required to use this service")
        via_cookie = not self.request.headers.get("Authorization")
        groups = tuple(model.get("groups") or ())
        return Identity(name, admin, can_build, via_cookie, groups, scopes, kind)

    def check_xsrf_cookie(self) -> None:
        """JupyterHub's XSRF check, for cookie-authenticated changes only (HubAuth calls it
        before it accepts a cookie; a refused cookie is no identity). Reads need none: a
        page's own fetch() of the event stream is a same-origin GET without the token."""
        headers = self.request.headers
        if headers.get("Authorization") or headers.get(tickets.HEADER) or not self.web.hub_auth:
            return
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return
        self.web.hub_auth.check_xsrf_cookie(self)

    def get_login_url(self) -> str:
        if not self.wants_page() or self.web.hub_auth is None:
            raise FancyError(403, "log in to the hub, or send an API token")
        return str(super().get_login_url())  # HubOAuthenticated: state cookie, PKCE

    @property
    def username(self) -> str:
        assert self.identity is not None
        return self.identity.name

    @property
    def is_admin(self) -> bool:
        return bool(self.identity and self.identity.admin)

    def user_token(self) -> str:
        """The caller's own hub token (header or OAuth cookie), to act as them on the hub."""
        return str(self.hub_auth.get_token(self) or "") if self.web.hub_auth else ""

    def require_build_scope(self) -> None:
        if not (self.identity and self.identity.can_build):
            raise FancyError(403, f"building needs the scope {self.web.build_scope}")

    # ---- input ---------------------------------------------------------------------------

    def json_body(self) -> Any:
        """The request body as JSON, within `max_body_bytes` and `max_json_depth`."""
        return parse_json_body(self.request.body, self.web.max_body_bytes, self.web.max_json_depth)

    def int_argument(self, name: str, low: int, high: int, default: int) -> int:
        """An integer query parameter in [low, high]; else an InputError naming it."""
        return int_param(self.get_argument(name, None), name, low, high, default)

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    # ---- errors --------------------------------------------------------------------------

    def fail(self, status: int, message: str, field: str = "") -> None:
        raise FancyError(status, message, field)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if database_down(exc):
            headers = {"Retry-After": str(DATABASE_RETRY_AFTER)}
            exc = FancyError(503, DATABASE_DOWN, headers=headers)
            kwargs["exc_info"] = (FancyError, exc, None)
        if isinstance(exc, FancyError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if database_down(value):  # the driver's own message: no SQL, no parameters
            cause = getattr(value, "orig", None) or value
            self.log.warning("%s %s -> 503: the database is not answering: %s: %s",
                             self.request.method, self.request.path, type(cause).__name__,
                             str(cause).strip())  # fmt: skip
            return
        if isinstance(value, FancyError):
            self.log.info(
                "%s %s -> %s: %s", self.request.method, self.request.path, value.status, value
            )
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        title, message, field = self._reason, "", ""
        if isinstance(exc, FancyError):
            title, message, field = exc.title or title, exc.message, exc.field
            for name, value in exc.headers.items():
                self.set_header(name, value)  # e.g. Retry-After (send_error cleared headers)
        elif isinstance(exc, HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        if self.html_errors:
            text = f"{field}: {message}" if field else message
            self.error_page(
                status_code, title, text or (SERVER_ERROR if status_code >= 500 else "")
            )
            return
        if field and self.message_names_field:
            message = f"{field}: {message}"
        body: dict[str, Any] = {"status": status_code, "message": message or title}
        if field:
            body["field"] = field
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def error_page(self, status: int, title: str, message: str) -> None:
        """An HTML error (pages override this with the page template)."""
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(f"{status} {title}\n{message}\n")
