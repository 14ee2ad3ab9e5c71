"""The registry client against the real Debian docker-registry in token-auth mode (issue 11).

The registry runs with `auth.token` (a certificate this test makes) and
tests/support/token_issuer.py on 127.0.0.1 as its realm: the client follows the `Bearer`
challenge, fetches a token with the credential as Basic auth (or an identity token as an
OAuth2 refresh token), keeps it until it expires, and turns a refusal into an error naming
the registry and the fix. The last test builds through the real engine: the engine pushes with
the service's credential (the daemon does the token flow itself), and the next request for
the same commit is a cache hit that runs no build.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fancy_env.builder.registry import RegistryAuthError, RegistryChecker
from fancy_env.builder.registry_auth import RegistryCredential
from tests.support.builder import BuilderProcess
from tests.support.gitserver import GitServer, dockerfile_repo_files
from tests.support.registry import TokenRegistry, write_auth

REPO = "fancy-env-test/tiny"


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    reg = TokenRegistry(tmp_path_factory.mktemp("token-registry"), expires_in=8).start()
    push_tiny_image(reg, REPO, "v1")
    yield reg
    reg.stop()


def push_tiny_image(reg: TokenRegistry, repo: str, tag: str) -> None:
    """Upload a config blob, one layer and a schema-2 manifest through the registry API."""
    token = reg.token(f"repository:{repo}:pull,push")
    headers = {"Authorization": f"Bearer {token}"}
    base = f"http://{reg.addr}/v2/{repo}"
    digests = []
    for blob in (json.dumps({"architecture": "amd64", "os": "linux"}).encode(), b"layer"):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        start = requests.post(f"{base}/blobs/uploads/", headers=headers, timeout=10)
        assert start.status_code == 202, start.text
        location = start.headers["Location"]
        sep = "&" if "?" in location else "?"
        put = requests.put(f"{location}{sep}digest={digest}", data=blob, headers={
            **headers, "Content-Type": "application/octet-stream"}, timeout=10)  # fmt: skip
        assert put.status_code == 201, put.text
        digests.append((digest, len(blob)))
    (config, config_size), (layer, layer_size) = digests
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": layer, "size": layer_size}],
    }  # fmt: skip
    r = requests.put(f"{base}/manifests/{tag}", data=json.dumps(manifest), headers={
        **headers, "Content-Type": manifest["mediaType"]}, timeout=10)  # fmt: skip
    assert r.status_code == 201, r.text


def checker(reg: TokenRegistry, credential: RegistryCredential | None) -> RegistryChecker:
    return RegistryChecker(f"http://{reg.addr}", credential, "BuilderApp.registry_credentials_file")


def test_registry_asks_for_a_token(token_registry: TokenRegistry) -> None:
    reg = token_registry
    anonymous = requests.head(f"http://{reg.addr}/v2/{REPO}/manifests/v1", timeout=10)
    assert anonymous.status_code == 401
    challenge = anonymous.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{reg.realm}",service="{reg.service}"'), challenge


async def test_token_flow_and_token_cache(token_registry: TokenRegistry) -> None:
    reg = token_registry
    before = len(reg.token_requests())
    client = checker(reg, RegistryCredential(reg.user, reg.password))
    assert await client.exists(f"{reg.addr}/{REPO}:v1") is True
    assert reg.token_requests()[before:] == [f"GET basic-ok repository:{REPO}:pull"]
    # the token is kept: more checks of the same repository fetch none
    assert await client.exists(f"{reg.addr}/{REPO}:v1") is True
    assert await client.exists(f"{reg.addr}/{REPO}:nope") is False
    assert len(reg.token_requests()) == before + 1
    # until it expires (expires_in 8 s, renewed 5 s early)
    await asyncio.sleep(3.5)
    assert await client.exists(f"{reg.addr}/{REPO}:v1") is True
    assert len(reg.token_requests()) == before + 2


async def test_identity_token_is_a_refresh_token(token_registry: TokenRegistry) -> None:
    reg = token_registry
    client = checker(reg, RegistryCredential(identity_token=reg.password[::-1]))
    assert await client.exists(f"{reg.addr}/{REPO}:v1") is True
    assert reg.token_requests()[-1] == f"POST refresh-ok repository:{REPO}:pull"


@pytest.mark.parametrize(
    ("credential", "needles"),
    [
        (None, ["requires credentials", "BuilderApp.registry_credentials_file"]),
        (
            RegistryCredential("fancy-env-test", "wrong"),
            [
                "token service http://127.0.0.1:",
                "refused the credentials of user",
                "fix the auths entry",
                "BuilderApp.registry_credentials_file",
            ],
        ),  # fmt: skip
        (RegistryCredential(identity_token="wrong"), ["refused the credentials of the token"]),
    ],
)
async def test_refusals_name_the_registry_and_the_fix(
    token_registry: TokenRegistry, credential: RegistryCredential | None, needles: list[str]
) -> None:
    reg = token_registry
    with pytest.raises(RegistryAuthError) as e:
        await checker(reg, credential).exists(f"{reg.addr}/{REPO}:v1")
    message = str(e.value)
    assert reg.addr in message
    for needle in needles:
        assert needle in message, message
    assert "wrong" not in message and reg.password not in message


async def test_a_token_without_the_scope_is_a_rights_error(token_registry: TokenRegistry) -> None:
    reg = token_registry
    client = checker(reg, RegistryCredential(reg.user, reg.password))
    with pytest.raises(RegistryAuthError) as e:
        await client.exists(f"{reg.addr}/denied/env:v1")
    message = str(e.value)
    assert f"registry {reg.addr} denied user {reg.user!r} access to denied/env" in message
    assert "give that account pull and push rights" in message


def executor_runs(svc: BuilderProcess) -> float:
    m = re.search(r"^fancy_env_executor_runs_total ([0-9.]+)$", svc.get("metrics").text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.mark.docker
@pytest.mark.slow
def test_build_push_and_cache_hit_against_token_registry(
    tmp_path: Path, token_registry: TokenRegistry, git_server: GitServer, docker_engine: str
) -> None:
    reg = token_registry
    wrong = write_auth(tmp_path / "wrong.json", reg.addr, reg.user, "wrong")
    refused = BuilderProcess(tmp_path / "refused", executor="docker", registry=reg.addr,
                             registry_auth=wrong).start()  # fmt: skip
    repo = git_server.create("env", dockerfile_repo_files(docker_engine, "token"))
    try:
        record = refused.post("alice", repo.url).json()
        assert record["status"] == "failed" and reg.addr in record["reason"], record
        assert executor_runs(refused) == 0
    finally:
        refused.stop()

    svc = BuilderProcess(tmp_path / "builder", executor="docker", registry=reg.addr,
                         registry_auth=reg.auth_file).start()  # fmt: skip
    image = ""
    try:
        first = svc.post("alice", repo.url).json()
        image = first["image"]
        events = svc.events(first["id"], timeout=300)
        assert events[-1]["phase"] == "built", events[-8:]
        assert any(e["phase"] == "pushing" for e in events)
        runs = executor_runs(svc)
        again = svc.post("alice", repo.url)
        assert again.status_code == 200 and again.json()["cache_hit"] is True, again.text
        assert executor_runs(svc) == runs, "a cache hit must not run repo2docker"
    finally:
        svc.stop()
        if image:
            subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
