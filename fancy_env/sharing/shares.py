""" "Share this server": a page over JupyterHub's share codes (JupyterHub 5+).

The page acts with the owner's own OAuth token, so the hub decides: creating a code needs the
`shares!user` scope on the owner (JupyterHub's default user role does not have it). Without
it the hub answers 403 and the page says which scope the admin must grant.

- GET  share[/<server>]   the owner's servers, active codes of the chosen one, who has access
- POST share[/<server>]   action=create (expires_in) | revoke (id) | revoke-access
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .base import SharingHandler
from .hubapi import APIResult

EXPIRY_CHOICES = [
    (3600, "1 hour"),
    (8 * 3600, "8 hours"),
    (86400, "1 day"),
    (7 * 86400, "1 week"),
    (30 * 86400, "30 days"),
]
MISSING_SCOPE = (
    "Your account may not share servers. Ask your hub admin to grant the scope "
    "'shares!user' to your role (and to this service's OAuth scopes); see the sharing docs. "
)


class ShareServerHandler(SharingHandler):
    async def get(self, server: str = "") -> None:
        await self.show(server)

    async def post(self, server: str = "") -> None:
        action = self.get_body_argument("action", "")
        hub, token, user = self.ctx.hub, self.user_token(), self.username
        created: dict[str, Any] | None = None
        notice = ""
        if action == "create":
            expires_in = self.expiry_argument()
            await self.require_running(server)
            result = await hub.create_share_code(token, user, server, expires_in)
            self.check(result, "create a share code")
            created = dict(result.body)
            created["full_accept_url"] = self.full_url(str(created.get("accept_url", "")))
        elif action == "revoke":
            code_id = self.get_body_argument("id", "")
            self.check(await hub.revoke_share_code(token, user, server, code_id), "revoke")
            notice = "The code was revoked: it can no longer be used to get access."
        elif action == "revoke-access":
            self.check(await hub.revoke_all_shares(token, user, server), "revoke access")
            notice = "Everyone who had accepted a code lost access to this server."
        else:
            self.fail_page(400, "Unknown action", "action must be create, revoke or revoke-access")
        await self.show(server, created=created, notice=notice)

    async def require_running(self, server: str) -> None:
        """A share code for a server that is not running would be listed nowhere (the page
        shows running servers only): refuse, and say where to start it."""
        model = await self.ctx.hub.get_user(self.user_token(), self.username)
        servers = (model.body or {}).get("servers", {}) if model.ok else {}
        if server not in servers:
            name = f"server {server!r}" if server else "default server"
            self.fail_page(
                409,
                "No server to share",
                f"Your {name} is not running, so there is nothing to share yet. Start it from "
                f"the hub home page ({self.ctx.hub_prefix}home), then come back to share it.",
            )

    def expiry_argument(self) -> int:
        raw = self.get_body_argument(
            "expires_in", str(self.ctx.config.share_code_default_expires_in)
        )
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if not 60 <= value <= 365 * 86400:
            self.fail_page(400, "Bad expiry", "expires_in must be 60 seconds to 365 days")
        return value

    def full_url(self, path: str) -> str:
        return f"{self.request.protocol}://{self.request.host}{path}" if path else ""

    def check(self, result: APIResult, what: str) -> None:
        if result.ok:
            return
        if result.status == 403:
            self.fail_page(403, "Sharing not allowed", MISSING_SCOPE + f"(hub: {result.message})")
        if result.status == 404:
            self.fail_page(404, "Not found", f"Could not {what}: {result.message}")
        status = result.status if 400 <= result.status < 500 else 502
        self.fail_page(status, "Sharing failed", f"Could not {what}: {result.message}")

    async def show(
        self, server: str, created: dict[str, Any] | None = None, notice: str = ""
    ) -> None:
        hub, token, user = self.ctx.hub, self.user_token(), self.username
        model = await hub.get_user(token, user)
        servers = (model.body or {}).get("servers", {}) if model.ok else {}
        codes: list[dict[str, Any]] = []
        shares: list[dict[str, Any]] = []
        error = ""
        if server in servers:
            listed = await hub.share_codes(token, user, server)
            if listed.ok:
                codes = list((listed.body or {}).get("items", []))
            else:
                error = MISSING_SCOPE + f"(hub: {listed.message})"
            granted = await hub.shares(token, user, server)
            if granted.ok:
                shares = list((granted.body or {}).get("items", []))
        self.render_page(
            "share.html",
            title="Share this server",
            servers=servers,
            server=server,
            running=server in servers,
            codes=codes,
            shares=shares,
            created=created,
            notice=notice,
            error=error,
            expiry_choices=EXPIRY_CHOICES,
            default_expiry=self.ctx.config.share_code_default_expires_in,
            page_url=f"{self.ctx.prefix}share" + (f"/{quote(server, safe='')}" if server else ""),
        )
