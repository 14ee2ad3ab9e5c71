"""The build-reference hook: how a spawner learns that an image came from our build service.

A start that carries `user_options["build_id"]` is accepted only when the build service
confirms that build: it exists, finished successfully, and was built for a repository and
commit whose image name it reports. The spawner then uses the confirmed image, never one
supplied by the user.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ConfirmedBuild:
    """What the build service vouches for."""

    build_id: str
    repo: str
    ref: str
    commit: str
    image: str
    user: str


class BuildRefError(Exception):
    """A build reference the service does not confirm; `reason` is shown to the user."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class BuildConfirmer(Protocol):
    async def confirm(self, build_id: str, username: str) -> ConfirmedBuild:
        """Return the confirmed build or raise BuildRefError."""
        ...


_BUILD_ID = re.compile(r"[0-9a-f]{1,32}")


class HTTPBuildConfirmer:
    """Confirms a build by asking the build service: `GET api/builds/<id>` with its token.

    Confirmed only when the build exists, finished with status `built`, the user asked for it
    (or joined it, or hit it in the cache), and its image lies under `image_prefix`.
    """

    def __init__(self, api_url: str, token: str, image_prefix: str = "", timeout: float = 10):
        self.api_url = api_url.rstrip("/") + "/"
        self.token = token
        self.image_prefix = image_prefix
        self.timeout = timeout

    def __repr__(self) -> str:  # never show the token
        return f"HTTPBuildConfirmer({self.api_url!r})"

    async def _fetch(self, build_id: str) -> dict[str, Any]:
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        url = f"{self.api_url}api/builds/{build_id}"
        headers = {"Authorization": f"token {self.token}"}
        try:
            response = await AsyncHTTPClient().fetch(
                url, headers=headers, request_timeout=self.timeout
            )
        except HTTPClientError as e:
            if e.code == 404:
                raise BuildRefError(f"no build with id {build_id!r}") from None
            raise BuildRefError(f"the build service answered {e.code}", status=503) from None
        except OSError:
            raise BuildRefError("the build service is not reachable", status=503) from None
        data = json.loads(response.body)
        if not isinstance(data, dict):
            raise BuildRefError("the build service gave an unexpected answer", status=503)
        return data

    async def confirm(self, build_id: str, username: str) -> ConfirmedBuild:
        if not isinstance(build_id, str) or not _BUILD_ID.fullmatch(build_id):
            raise BuildRefError("build_id must be the id of a build (hexadecimal)")
        data = await self._fetch(build_id)
        if data.get("status") != "built":
            raise BuildRefError(f"build {build_id} is {data.get('status')!r}, not built")
        users = data.get("users") or [data.get("user")]
        if username not in users:
            raise BuildRefError(f"build {build_id} was not requested by {username}", status=403)
        image = str(data.get("image", ""))
        if self.image_prefix and not image.startswith(self.image_prefix):
            raise BuildRefError(f"build {build_id} has an image outside this hub's registry")
        return ConfirmedBuild(
            build_id=build_id, repo=str(data["repo"]), ref=str(data.get("ref", "")),
            commit=str(data["commit"]), image=image, user=username,
        )  # fmt: skip
