"""The "Git credentials" page and `api/credentials`: a user's forge tokens (private repos).

Routes (relative to the service prefix; login through the hub, XSRF for cookie requests):

- `credentials`          GET the page; POST its forms (`action` = save | delete)
- `api/credentials`      GET `{credentials: [{host, origin, created}]}`; POST `{host, token,
  username?}` (201 stored, 200 replaced); DELETE `?host=…` (204, 404 when there is none)

A token is taken in, validated (`forge_auth`), encrypted (`builder.credentials`) and never
written back: not in a page, an answer, a log line or an error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..builder.forge_auth import (
    CredentialError,
    check_count,
    check_token,
    check_username,
    host_label,
    origin_of,
    parse_host,
)
from ..errors import FancyError
from .base import APIHandler, SharingHandler


class CredentialsBase(SharingHandler):
    def store(self) -> Any:
        store = self.ctx.builds.credentials
        if store is None:
            raise FancyError(
                404, "storing credentials is turned off on this service (FancyEnvCredentials)"
            )
        return store

    def policy(self) -> Any:
        return self.ctx.builds.policy

    async def listing(self) -> list[dict[str, Any]]:
        return [
            {"host": host_label(row["origin"]), "origin": row["origin"], "created": row["created"]}
            for row in await self.store().listing(self.username)
        ]

    async def save(self, body: Mapping[str, Any]) -> tuple[str, bool]:
        """Validate and store; (origin, replaced). CredentialError names the field."""
        store = self.store()
        origin = parse_host(body.get("host"), self.policy())
        token = check_token(body.get("token"))
        username = check_username(body.get("username"))
        check_count(await store.count(self.username), await store.has(self.username, origin),
                    store.max_per_user)  # fmt: skip
        replaced = await store.put(self.username, origin, token, username)
        self.log.info("%s %s a credential for %s", self.username,
                      "replaced" if replaced else "stored", origin)  # fmt: skip
        return origin, replaced

    async def remove(self, host: Any) -> str:
        origin = parse_host(host, self.policy())
        if not await self.store().delete(self.username, origin):
            raise FancyError(404, f"you store no credential for {host_label(origin)}", "host")
        self.log.info("%s deleted the credential for %s", self.username, origin)
        return origin


class CredentialsPageHandler(CredentialsBase):
    async def get(self) -> None:
        await self.show()

    async def post(self) -> None:
        action = self.get_body_argument("action", "save")
        try:
            if action == "delete":
                origin = await self.remove(self.get_body_argument("host", ""))
                await self.show(notice=f"Deleted the credential for {host_label(origin)}.")
                return
            if action != "save":
                raise CredentialError("action", "must be save or delete")
            body = {k: self.get_body_argument(k, "") for k in ("host", "token", "username")}
            origin, replaced = await self.save(body)
        except CredentialError as err:
            self.set_status(400)
            await self.show(error=str(err))
            return
        verb = "Replaced" if replaced else "Stored"
        await self.show(notice=f"{verb} the credential for {host_label(origin)}.")

    async def show(self, notice: str = "", error: str = "") -> None:
        self.render_page(
            "credentials.html",
            title="Git credentials",
            credentials=await self.listing(),
            notice=notice,
            error=error,
            page_url=f"{self.ctx.prefix}credentials",
            max_per_user=self.store().max_per_user,
        )


class CredentialsAPIHandler(CredentialsBase, APIHandler):
    accepts_ticket = False  # a cookie (with XSRF) or an API token; not the form's ticket

    async def get(self) -> None:
        self.write({"credentials": await self.listing()})

    async def post(self) -> None:
        body = self.body()
        if not isinstance(body, dict):
            raise FancyError(400, "the body must be a JSON object {host, token, username}", "body")
        origin, replaced = await self.save(body)  # a CredentialError is a 400 naming its field
        created = next((c for c in await self.listing() if c["origin"] == origin), {})
        self.set_status(200 if replaced else 201)
        self.write({**created, "replaced": replaced})

    async def delete(self) -> None:
        await self.remove(self.get_argument("host", ""))
        self.set_status(204)
        self.finish()


async def private_notice(handler: SharingHandler, repo: str) -> str:
    """What a link page tells a recipient when the link's image came from a private
    repository and they store no credential for its host ("" otherwise; the launch still
    asks the forge with the recipient's own credential, this is only the early word)."""
    store = handler.ctx.builds.credentials
    if store is None or not repo or not await handler.ctx.builds.is_private(repo):
        return ""
    origin = origin_of(repo)
    if await store.has(handler.username, origin):
        return ""
    return (
        f"This environment comes from a private repository on {host_label(origin)}. It "
        f"launches only for people who can read that repository: store your own access "
        f"token for {host_label(origin)} at {handler.ctx.prefix}credentials first."
    )
