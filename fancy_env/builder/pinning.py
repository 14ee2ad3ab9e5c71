"""Launch by digest: what a server of a build starts from, checked at every launch.

A build record keeps the digest its image had when it was built (or found in the cache):
the registry's manifest digest, or the engine's image ID without a registry. The hub's
spawners confirm a build with `POST api/builds/<id>/launch` and start the answer's
`launch_image` (`name@sha256:…` or the image ID), so a later push to the same tag cannot
change what a confirmed build launches.

The confirmation asks afresh (never the cache check's memory) whether that digest is still
there. An image removed by hand (`docker rmi`, a registry delete) or by the retention policy
is not launched and does not fail the launch: the memory forgets it and the answer is, in
order, the build that now serves the same image name if its image is there, or a new build
of the same commit (joined if one is under way), which the spawner waits for.
"""

from __future__ import annotations

from typing import Any

from .db import Build
from .handlers import BaseHandler
from .registry import CacheCheckError, RegistryAuthError, verify_digest
from .service import BuildService, ServiceError

REMOVED = "removed"  # the status gc.py gives a build whose image is gone


async def _present(service: BuildService, build: Build) -> bool:
    try:
        return await verify_digest(service.checker, build.image, build.digest or "")
    except RegistryAuthError as e:
        raise ServiceError(503, str(e)) from None
    except CacheCheckError as e:  # unreachable: launch what was confirmed, do not rebuild
        service.log.warning("could not verify %s of build %s: %s", build.image, build.id, e)
        return True


async def confirm_launch(service: BuildService, build: Build, user: str) -> Build:
    """The build a launch of `build` starts (see the module docstring). A build that is not
    built (queued, running, failed) is answered as it is."""
    if build.status not in ("built", REMOVED):
        return build
    if build.status == "built" and await _present(service, build):
        return build
    serving_id = await service.store.serving_build(build.image)
    if serving_id and serving_id != build.id:
        serving = await service.store.get(serving_id)
        if serving is not None and serving.status == "built" and await _present(service, serving):
            await service.store.add_user(serving.id, user)
            return serving
    forget = getattr(service.checker, "forget", None)
    if callable(forget):
        forget(build.image)
    again = await service.rebuild_missing(user, build)
    service.log.warning(
        "image %s of build %s is gone (removed outside the service?): building it again as %s",
        build.image, build.id, again.id,
    )  # fmt: skip
    if build.status == "built":
        await service.store.update(
            build.id, status=REMOVED,
            reason=f"image found missing at a launch; built again as {again.id}",
        )  # fmt: skip
    return again


async def launch_json(service: BuildService, build: Build, prefix: str) -> dict[str, Any]:
    """A build's JSON with what its servers launch and who may use it."""
    data = build.to_json(prefix)
    data["launch_image"] = service.launch_image(build) if build.status == "built" else ""
    data["users"] = await service.store.users(build.id)
    return data


class LaunchHandler(BaseHandler):
    """`POST api/builds/<id>/launch` `{user?}`: confirm a build for a launch (see above).

    The hub's spawners call it with the service token and name the launching user; a user
    may call it for a build of their own. 200 with the build to launch (`launch_image`), or
    202 with the build of the same commit that replaces a removed image."""

    async def post(self, build_id: str) -> None:
        build = await self.get_visible_build(build_id)
        body = self.json_body() if self.request.body else {}
        if not isinstance(body, dict):
            self.fail(400, "the request body must be a JSON object: {user?}", "body")
        user = body.get("user") or self.identity.name
        if not isinstance(user, str):
            self.fail(400, "user must be a user name", "user")
        if user != self.identity.name and not self.identity.admin:
            self.fail(403, "confirming a launch for another user needs admin", "user")
        if user != build.user and user not in await self.service.store.users(build.id):
            self.fail(403, f"build {build_id} was not requested by {user}", "user")
        answer = await confirm_launch(self.service, build, user)
        status = 200 if answer.status == "built" else 202
        self.write_json(await launch_json(self.service, answer, self.prefix), status)
