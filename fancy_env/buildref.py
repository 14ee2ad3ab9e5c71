"""The build-reference hook: how a spawner learns that an image came from our build service.

A start that carries `user_options["build_id"]` is accepted only when the build service
confirms that build: it exists, finished successfully, and was built for a repository and
commit whose image name it reports. The spawner then uses the confirmed image, never one
supplied by the user, pinned by its digest (`launch_image`: `name@sha256:…`, or the image ID
on an engine without a registry), so a later push to the tag cannot change what starts.

The confirmation (`POST api/builds/<id>/launch`) checks that the pinned image is still
there; if it was removed, the service answers with a new build of the same commit and the
confirmer waits for it (`rebuild_timeout`) before the server starts from it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

from .images import is_pinned_form


@dataclass(frozen=True)
class ConfirmedBuild:
    """What the build service vouches for."""

    build_id: str
    repo: str
    ref: str
    commit: str
    image: str
    user: str
    digest: str = ""  # the pinned digest ("" for builds recorded without one)
    launch_image: str = ""  # what the server starts: name@digest, an image ID, or the tag


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
_WAITING = frozenset({"queued", "resolving", "fetching", "building", "pushing"})


class HTTPBuildConfirmer:
    """Confirms a build by asking the build service: `GET api/builds/<id>` with its token.

    Confirmed only when the build exists, finished with status `built`, the user asked for it
    (or joined it, or hit it in the cache), and its image lies under `image_prefix`.
    """

    def __init__(
        self, api_url: str, token: str, image_prefix: str = "", timeout: float = 10,
        rebuild_timeout: float = 900, poll_interval: float = 1.0,
    ) -> None:  # fmt: skip
        self.api_url = api_url.rstrip("/") + "/"
        self.token = token
        self.image_prefix = image_prefix
        self.timeout = timeout
        self.rebuild_timeout = rebuild_timeout  # waiting for the rebuild of a removed image
        self.poll_interval = poll_interval

    def __repr__(self) -> str:  # never show the token
        return f"HTTPBuildConfirmer({self.api_url!r})"

    async def _fetch(self, build_id: str, launch_for: str = "") -> dict[str, Any]:
        """`GET api/builds/<id>`, or with `launch_for` (a user) `POST …/launch`."""
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        url = f"{self.api_url}api/builds/{build_id}"
        headers = {"Authorization": f"token {self.token}"}
        extra: dict[str, Any] = {}
        if launch_for:
            url += "/launch"
            extra = {"method": "POST", "body": json.dumps({"user": launch_for})}
            headers["Content-Type"] = "application/json"
        try:
            response = await AsyncHTTPClient().fetch(
                url, headers=headers, request_timeout=self.timeout, **extra
            )
        except HTTPClientError as e:
            if e.code == 404:
                raise BuildRefError(f"no build with id {build_id!r}") from None
            if e.code in (400, 403, 429, 503) and e.response is not None:  # its own words
                raise BuildRefError(_message(e.response.body, e.code), status=e.code) from None
            raise BuildRefError(f"the build service answered {e.code}", status=503) from None
        except OSError:
            raise BuildRefError("the build service is not reachable", status=503) from None
        data = json.loads(response.body)
        if not isinstance(data, dict):
            raise BuildRefError("the build service gave an unexpected answer", status=503)
        return data

    async def _rebuilt(self, data: dict[str, Any]) -> dict[str, Any]:
        """Wait for the build replacing a removed image to end (`rebuild_timeout`)."""
        deadline = time.monotonic() + self.rebuild_timeout
        while data.get("status") in _WAITING:
            if time.monotonic() > deadline:
                raise BuildRefError(
                    f"the image was removed and is being built again (build {data.get('id')}); "
                    "start the server again when that build is done", status=503,
                )  # fmt: skip
            await asyncio.sleep(self.poll_interval)
            data = await self._fetch(str(data.get("id", "")))
        return data

    async def confirm(self, build_id: str, username: str) -> ConfirmedBuild:
        if not isinstance(build_id, str) or not _BUILD_ID.fullmatch(build_id):
            raise BuildRefError("build_id must be the id of a build (hexadecimal)")
        data = await self._fetch(build_id, launch_for=username)
        if data.get("id") != build_id and data.get("status") in _WAITING:
            # the image was removed and this build of the same commit replaces it: wait for
            # it, then confirm it
            data = await self._rebuilt(data)
            if data.get("status") == "built":
                data = await self._fetch(str(data["id"]), launch_for=username)
        build_id = str(data.get("id") or build_id)
        if data.get("status") != "built":
            raise BuildRefError(f"build {build_id} is {data.get('status')!r}, not built")
        users = data.get("users") or [data.get("user")]
        if username not in users:
            raise BuildRefError(f"build {build_id} was not requested by {username}", status=403)
        image = str(data.get("image", ""))
        if self.image_prefix and not image.startswith(self.image_prefix):
            raise BuildRefError(f"build {build_id} has an image outside this hub's registry")
        digest = str(data.get("digest") or "")
        launch_image = str(data.get("launch_image") or image)
        if not is_pinned_form(image, digest, launch_image):
            raise BuildRefError(f"build {build_id} names an unexpected image", status=503)
        return ConfirmedBuild(
            build_id=build_id, repo=str(data["repo"]), ref=str(data.get("ref", "")),
            commit=str(data["commit"]), image=image, user=username, digest=digest,
            launch_image=launch_image,
        )  # fmt: skip


def _message(body: bytes, code: int) -> str:
    """The `message` of the build service's JSON error body."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return f"the build service answered {code}"
