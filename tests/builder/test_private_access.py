"""Private repositories in the build service, in-process, against real Git remotes on loopback.

A private forge (tests/support/gitserver.py with `tokens`: HTTP Basic auth) and a public one;
the real BuildService with the fake executor (no Docker: these tests are about who may read
what, and what is stored), a real CredentialStore in the build database (SQLite and
PostgreSQL, tests/builder/conftest.py). The build pod case uses tests/support/fake_k8s.py (a
mock: no Kubernetes API server can run here).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fancy_env.builder.checkout import FetchSettings, fetch_checkout
from fancy_env.builder.confine import CheckoutError
from fancy_env.builder.credentials import CredentialKeyError, CredentialStore, load_keys
from fancy_env.builder.db import Store
from fancy_env.builder.executors.fake import FakeExecutor
from fancy_env.builder.executors.kube import KubernetesExecutor
from fancy_env.builder.forge_auth import GitAuth
from fancy_env.builder.registry import TableChecker
from fancy_env.builder.service import BuildService, ServiceConfig, ServiceError
from fancy_env.repos import RepoPolicy
from tests.support import db
from tests.support.fake_k8s import FakeKubeAPI
from tests.support.gitserver import GitServer, git

ALICE_TOKEN = "alice-canary-7f3e9c1b2d"
BOB_TOKEN = "bob-token-5a6b7c8d9e"
POLICY = RepoPolicy(
    allowed_http_hosts=frozenset({"127.0.0.1"}), allowed_private_hosts=frozenset({"127.0.0.1"})
)


@pytest.fixture(scope="module")
def forges(
    tmp_path_factory: pytest.TempPathFactory, db_backend: object
) -> Iterator[tuple[GitServer, GitServer]]:
    root = tmp_path_factory.mktemp("forges")  # one pair per database backend
    private = GitServer(root / "private", tokens=(ALICE_TOKEN, BOB_TOKEN)).start()
    public = GitServer(root / "public").start()
    try:
        yield private, public
    finally:
        private.stop()
        public.stop()


async def make_service(tmp: Path, executor: object | None = None) -> BuildService:
    store = await Store.open(db.url_for(tmp, "builds.sqlite"))
    config = ServiceConfig(image_prefix="127.0.0.1:5000/fancy-env-test/", push=False,
                           flush_interval=0.01)  # fmt: skip
    executor = executor or FakeExecutor(line_delay=0.0, lines_per_phase=1)
    service = BuildService(store, executor, TableChecker(store), POLICY, config,  # type: ignore[arg-type]
                           logging.getLogger("test"))  # fmt: skip
    service.access.credentials = await CredentialStore.open(
        store.engine, str(tmp / "credentials.key")
    )
    service.access.page_url = "/services/fancy-env/credentials"
    return service


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[BuildService]:
    svc = await make_service(tmp_path)
    await svc.start()
    yield svc
    await svc.stop()
    await svc.store.close()


async def wait_built(service: BuildService, build_id: str, rounds: int = 200) -> str:
    for _ in range(rounds):
        build = await service.store.get(build_id)
        assert build is not None
        if build.status in ("built", "failed", "cancelled"):
            return build.status + (f": {build.reason}" if build.reason else "")
        await asyncio.sleep(0.02)
    raise AssertionError("the build did not finish")


async def test_no_credential_is_a_clear_403(service: BuildService, forges: tuple) -> None:
    private, _ = forges
    repo = private.create("secret-course-a")
    with pytest.raises(ServiceError) as err:
        await service.request("alice", repo.url)
    assert err.value.status == 403 and err.value.field == "repo"
    assert "needs a credential for http://127.0.0.1:" in err.value.reason
    assert "/services/fancy-env/credentials" in err.value.reason


async def test_private_build_then_who_may_use_it(service: BuildService, forges: tuple) -> None:
    private, _ = forges
    repo = private.create("secret-course-b")
    creds = service.access.credentials
    origin = private.base_url
    await creds.put("alice", origin, ALICE_TOKEN)
    build = await service.request("alice", repo.url)
    assert build.private
    assert await wait_built(service, build.id) == "built"
    commit = build.commit

    # bob, no credential: by branch, by full commit (no ref lookup needed), joining: refused
    for ref in ("", "main", commit):
        with pytest.raises(ServiceError) as err:
            await service.request("bob", repo.url, ref)
        assert err.value.status == 403, ref
        assert "needs a credential" in err.value.reason
    # bob with a token the forge refuses
    await creds.put("bob", origin, "not-a-valid-token-123")
    with pytest.raises(ServiceError) as err:
        await service.request("bob", repo.url, commit)
    assert err.value.status == 403 and "does not open this repository" in err.value.reason
    # bob with his own valid token: a cache hit of alice's image, marked private too
    await creds.put("bob", origin, BOB_TOKEN)
    hit = await service.request("bob", repo.url, commit)
    assert hit.status == "built" and hit.cache_hit and hit.private
    assert hit.image == build.image

    # nothing stored in plain text
    dump = db.dump(db.sync_url(service.store.engine.url))
    assert ALICE_TOKEN not in dump and BOB_TOKEN not in dump
    async with service.store.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
    assert "forge_credentials" in tables


async def test_full_commit_of_unknown_image_is_checked(
    service: BuildService, forges: tuple
) -> None:
    """A full commit skips the ref lookup; a new build still asks the forge as the user."""
    private, _ = forges
    repo = private.create("secret-course-c")
    commit = git("rev-parse", "HEAD", cwd=repo.work)
    with pytest.raises(ServiceError) as err:
        await service.request("carol", repo.url, commit)
    assert err.value.status == 403
    await service.access.credentials.put("carol", private.base_url, BOB_TOKEN)
    build = await service.request("carol", repo.url, commit)
    assert build.private and await wait_built(service, build.id) == "built"


async def test_credential_goes_to_its_host_only(service: BuildService, forges: tuple) -> None:
    private, public = forges
    await service.access.credentials.put("dora", private.base_url, ALICE_TOKEN)
    before = len(public.requests())
    repo = public.create("open-course")
    build = await service.request("dora", repo.url)
    assert not build.private and await wait_built(service, build.id) == "built"
    seen = public.requests()[before:]
    assert seen and all("auth=no" in line for line in seen), seen


async def test_deleted_credential_fails_the_build(tmp_path: Path, forges: tuple) -> None:
    """The credential is read when the build starts (not kept with the queued build): erin's
    second build waits in the queue (max_per_user = 1) while her first (slow) one runs."""
    private, _ = forges
    service = await make_service(tmp_path, FakeExecutor(line_delay=0.2, lines_per_phase=3))
    await service.start()
    try:
        first, repo = private.create("secret-course-d1"), private.create("secret-course-d")
        await service.access.credentials.put("erin", private.base_url, ALICE_TOKEN)
        await service.request("erin", first.url)
        build = await service.request("erin", repo.url)
        assert service.active[build.id].task is None  # waiting for a slot
        await service.access.credentials.delete("erin", private.base_url)  # before it starts
        status = await wait_built(service, build.id, rounds=1000)
        assert status.startswith("failed") and "was removed; add it again at" in status
    finally:
        await service.stop()
        await service.store.close()


async def test_kubernetes_executor_refuses_private_builds(tmp_path: Path, forges: tuple) -> None:
    """Decision: private repositories are not built in build pods (the token would have to
    reach the pod); the request is refused with a 400 that says so, and no pod is made.
    The Kubernetes API is tests/support/fake_k8s.py (a mock)."""
    private, public = forges
    api = await FakeKubeAPI().start()
    kube = KubernetesExecutor(api_url=api.url, namespace="ns", poll_interval=0.01)
    svc = await make_service(tmp_path, kube)
    try:
        repo = private.create("secret-course-k")
        await svc.access.credentials.put("alice", private.base_url, ALICE_TOKEN)
        with pytest.raises(ServiceError) as err:
            await svc.request("alice", repo.url)
        assert err.value.status == 400 and err.value.field == "repo"
        assert "kubernetes executor" in err.value.reason.lower()
        assert api.created == []
    finally:
        await kube.close()
        api.stop()
        await svc.store.close()


async def test_clone_sends_the_header_never_the_url(tmp_path: Path, forges: tuple) -> None:
    """The checkout as the Docker executor runs it: without the credential the clone fails;
    with it, it works and nothing of the token is left in the tree (.git/config included)."""
    private, _ = forges
    repo = private.create("secret-course-e", {"README.md": "private material\n"})
    commit = git("rev-parse", "HEAD", cwd=repo.work)
    build_dir = tmp_path / "b1"
    build_dir.mkdir()
    with pytest.raises(CheckoutError) as err:
        await fetch_checkout(repo.url, commit, "", str(build_dir), FetchSettings(policy=POLICY),
                             lambda m: None)  # fmt: skip
    assert ALICE_TOKEN not in err.value.reason
    build_dir = tmp_path / "b2"
    build_dir.mkdir()
    auth = GitAuth(private.base_url, ALICE_TOKEN)
    with_auth = FetchSettings(policy=POLICY, auth=auth)
    context = await fetch_checkout(repo.url, commit, "", str(build_dir), with_auth, print)
    assert_tree_clean(Path(context), build_dir, auth)


def assert_tree_clean(context: Path, build_dir: Path, auth: GitAuth) -> None:
    assert (context / "README.md").read_text() == "private material\n"
    assert "extraheader" not in (context / ".git" / "config").read_text().lower()
    for path in build_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert ALICE_TOKEN.encode() not in data, path
            assert auth.header.split()[1].encode() not in data, path


async def test_key_file_mode_and_rotation(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet
    from sqlalchemy import text

    from fancy_env.dbengine import make_engine

    key = tmp_path / "credentials.key"
    engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite'}")
    store = await CredentialStore.open(engine, str(key))
    assert not key.exists()  # made on first use
    await store.put("alice", "https://github.com", ALICE_TOKEN, "alice")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert await store.get("alice", "https://github.com") == GitAuth(
        "https://github.com", ALICE_TOKEN, "alice"
    )
    listing = await store.listing("alice")
    assert listing[0]["origin"] == "https://github.com" and "t" not in listing[0]
    # a row moved to another user does not decrypt into a working credential
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE forge_credentials SET user = 'mallory'"))
    assert await store.get("mallory", "https://github.com") is None
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE forge_credentials SET user = 'alice'"))
    # rotation: a new key on top; start-up re-encrypts; the old key can then go
    old = key.read_bytes()
    key.write_bytes(Fernet.generate_key() + b"\n" + old)
    await CredentialStore.open(engine, str(key))
    key.write_bytes(key.read_bytes().splitlines()[0] + b"\n")
    again = await CredentialStore.open(engine, str(key))
    assert await again.get("alice", "https://github.com") is not None
    # group- or world-readable: refused
    os.chmod(key, 0o640)
    with pytest.raises(CredentialKeyError, match="chmod 600"):
        load_keys(str(key))
    await engine.dispose()
