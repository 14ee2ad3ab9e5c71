"""A small asynchronous client for the hub REST API and the build API, acting with the
*recipient's own* OAuth token, so the hub applies that user's permissions. Never logs tokens."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

log = logging.getLogger("fancy_env.sharing")
REQUEST_TIMEOUT = 120.0


@dataclass
class APIResult:
    status: int
    body: Any  # parsed JSON, or text

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        """The hub's reason for a refusal, from its JSON error body."""
        if isinstance(self.body, dict):
            return str(self.body.get("message") or self.body.get("error") or self.body)
        return str(self.body or f"HTTP {self.status}")


async def request(method: str, url: str, token: str, body: Any = None) -> APIResult:
    """One logged HTTP call; 4xx/5xx are returned, not raised; network errors are 502."""
    req = HTTPRequest(
        url,
        method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        body=None if body is None else json.dumps(body),
        allow_nonstandard_methods=True,
        request_timeout=REQUEST_TIMEOUT,
    )
    try:
        resp = await AsyncHTTPClient().fetch(req, raise_error=False)
    except (OSError, HTTPClientError) as err:
        log.warning("%s %s failed: %s", method, url, err)
        return APIResult(502, {"message": f"could not reach {url.split('?')[0]}: {err}"})
    text = resp.body.decode("utf-8", "replace") if resp.body else ""
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = text
    log.info("%s %s -> %s", method, url.split("?")[0], resp.code)
    return APIResult(resp.code, parsed)


def _server_path(user: str, server: str) -> str:
    path = f"users/{quote(user, safe='')}/server"
    return f"{path}s/{quote(server, safe='')}" if server else path


class HubAPI:
    def __init__(self, api_url: str) -> None:
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"

    async def get_user(self, token: str, name: str) -> APIResult:
        return await request("GET", f"{self.api_url}users/{quote(name, safe='')}", token)

    async def start_server(
        self, token: str, user: str, server: str, options: dict[str, Any]
    ) -> APIResult:
        body: dict[str, Any] = {"user_options": options}
        if server:
            body["display_name"] = server
        return await request("POST", self.api_url + _server_path(user, server), token, body)

    async def stop_server(self, token: str, user: str, server: str) -> APIResult:
        return await request("DELETE", self.api_url + _server_path(user, server), token)

    async def share_codes(self, token: str, user: str, server: str) -> APIResult:
        url = f"{self.api_url}share-codes/{quote(user, safe='')}/{quote(server, safe='')}"
        return await request("GET", url, token)

    async def create_share_code(
        self, token: str, user: str, server: str, expires_in: int
    ) -> APIResult:
        url = f"{self.api_url}share-codes/{quote(user, safe='')}/{quote(server, safe='')}"
        return await request("POST", url, token, {"expires_in": expires_in})

    async def revoke_share_code(
        self, token: str, user: str, server: str, code_id: str
    ) -> APIResult:
        url = (
            f"{self.api_url}share-codes/{quote(user, safe='')}/{quote(server, safe='')}"
            f"?id={quote(code_id, safe='')}"
        )
        return await request("DELETE", url, token)

    async def shares(self, token: str, user: str, server: str) -> APIResult:
        url = f"{self.api_url}shares/{quote(user, safe='')}/{quote(server, safe='')}"
        return await request("GET", url, token)

    async def revoke_all_shares(self, token: str, user: str, server: str) -> APIResult:
        url = f"{self.api_url}shares/{quote(user, safe='')}/{quote(server, safe='')}"
        return await request("DELETE", url, token)
