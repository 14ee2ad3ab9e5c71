"""Launch by digest: the pure pin functions (tables) and FancyKubeSpawner's pod image.

The pod test uses KubeSpawner's `get_pod_manifest()` with a dummy KUBECONFIG (no API server
exists here, none is called) and the real `HTTPBuildConfirmer`, which asks a small stand-in
for the build service on loopback (the real service's answer is tested in
tests/integration/test_launch_digest.py with a real hub, registry and engine).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler
from traitlets.config import Config

from fancy_env.images import is_pinned_form, pinned_image
from tests.support.net import free_port
from tests.unit.test_kube_manifest import kubeconfig  # noqa: F401 - the fixture

NAME = "127.0.0.1:5000/fancy-env/r"
IMAGE = f"{NAME}:0123abcd"
D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("image", "digest", "in_registry", "expected"),
    [
        (IMAGE, D1, True, f"{NAME}@{D1}"),
        (IMAGE, D1, False, D1),  # engine without a registry: the image ID
        (IMAGE, "", True, IMAGE),  # no digest recorded: the tag
        ("fancy-env/r:abc", D1, False, D1),
        ("127.0.0.1:5000/r", D1, True, f"127.0.0.1:5000/r@{D1}"),  # no tag
    ],
)
def test_pinned_image(image: str, digest: str, in_registry: bool, expected: str) -> None:
    assert pinned_image(image, digest, in_registry) == expected
    assert is_pinned_form(image, digest, expected)


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:" + "a" * 64, "sha256:" + "A" * 64])
def test_pinned_image_refuses_bad_digests(digest: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        pinned_image(IMAGE, digest, True)


@pytest.mark.parametrize(
    ("digest", "launch"),
    [
        (D1, f"{NAME}@{D2}"),  # another digest
        (D1, f"evil.example/x@{D1}"),  # another name
        (D1, IMAGE),  # the tag although a digest is recorded
        ("", f"{NAME}@{D1}"),  # a digest although none is recorded
        ("sha256:short", "sha256:short"),
        (D1, f"{NAME}:other"),
    ],
)
def test_unexpected_launch_images_are_refused(digest: str, launch: str) -> None:
    assert not is_pinned_form(IMAGE, digest, launch)


class StandIn(RequestHandler):
    """Answers `POST api/builds/<id>/launch` as the build service does for a built image."""

    def post(self, build_id: str) -> None:
        user = json.loads(self.request.body)["user"]
        self.application.settings["asked"].append((build_id, user))
        self.finish({"id": build_id, "status": "built", "repo": "https://example.org/r",
                     "ref": "", "commit": "0123abcd", "image": IMAGE, "digest": D1,
                     "launch_image": f"{NAME}@{D1}", "users": [user]})  # fmt: skip


async def test_kube_pod_runs_the_confirmed_digest(kubeconfig: Path) -> None:  # noqa: F811
    from fancy_env.buildref import HTTPBuildConfirmer
    from fancy_env.spawner_kube import FancyKubeSpawner

    asked: list[Any] = []
    port = free_port()
    server = HTTPServer(Application([(r"/api/builds/([0-9a-f]+)/launch", StandIn)], asked=asked))
    server.listen(port, "127.0.0.1")
    try:
        c = Config()
        c.KubeSpawner.profile_list = [{"display_name": "Repo", "slug": "repo", "default": True,
                                       "repository_build": {"enabled": True}}]  # fmt: skip
        c.KubeSpawner.image = "quay.io/jupyter/base-notebook:latest"
        spawner = FancyKubeSpawner(_mock=True, config=c)
        spawner.image_prefix = "127.0.0.1:5000/fancy-env/"
        spawner.build_confirmer = HTTPBuildConfirmer(f"http://127.0.0.1:{port}/", "t")
        spawner.fancy_user_scopes = lambda: frozenset({"custom:fancy-env:build"})  # type: ignore[method-assign]
        spawner.user_options = {"profile": "repo", "build_id": "abc123"}
        await spawner.load_user_options()
        pod = spawner.api.api_client.sanitize_for_serialization(await spawner.get_pod_manifest())
    finally:
        server.stop()
    assert pod["spec"]["containers"][0]["image"] == f"{NAME}@{D1}"
    assert asked == [("abc123", spawner.user.name)]
