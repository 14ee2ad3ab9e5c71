"""Users' forge credentials at rest: encrypted rows, a key file of the service's own.

    creds = await FancyEnvCredentials(parent=builder_app).make_store(engine)
    await creds.put("alice", "https://github.com", token, username="")
    await creds.get("alice", "https://github.com")  # GitAuth (decrypted in memory) or None

Each row (`forge_credentials`: user, origin, secret, created) holds the token and user name
encrypted with Fernet (AES-128-CBC + HMAC-SHA256, `cryptography`). The plaintext also names
the row's user and origin and is checked on decryption, so a row copied to another user or
host does not decrypt into a working credential. The key file (`key_file`, default
`credentials.key` in the service's state directory) is made on first use with mode 0600; the
service refuses to start when it is readable by group or others, or not its own. It may hold
several keys, one a line: the first encrypts, all decrypt, and at start-up every row is
re-encrypted with the first (key rotation: put a new key on top, restart, then drop the old).
"""

from __future__ import annotations

import json
import os
import stat
import time
from typing import Any

from sqlalchemy import Float, String, Text, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from traitlets import Bool, Int, Unicode, default
from traitlets.config import Configurable

from ..dbengine import upgrade_schema
from .forge_auth import GitAuth


class CredentialKeyError(Exception):
    """The key file is unsafe or unreadable; the message says what to do."""


class CredBase(DeclarativeBase):
    pass


class ForgeCredential(CredBase):
    __tablename__ = "forge_credentials"
    user: Mapped[str] = mapped_column(String(255), primary_key=True)
    origin: Mapped[str] = mapped_column(String(320), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    created: Mapped[float] = mapped_column(Float)


def load_keys(path: str, create: bool = True) -> list[bytes]:
    """The Fernet keys in `path` (made, 0600, when missing and `create`; [] when missing
    otherwise); refused when group or others can read it or it is not the service's own."""
    from cryptography.fernet import Fernet

    if not create and not os.path.lexists(path):
        return []
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key() + b"\n")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise CredentialKeyError(f"cannot read the credential key file {path}: {e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_mode & 0o077 or not stat.S_ISREG(st.st_mode):
            raise CredentialKeyError(
                f"the credential key file {path} is readable by group or others (mode "
                f"{stat.S_IMODE(st.st_mode):o}): run `chmod 600 {path}`"
            )
        if st.st_uid != os.geteuid():
            raise CredentialKeyError(f"the credential key file {path} is not the service's own")
        keys = [line.strip() for line in f.read().splitlines() if line.strip()]
    if not keys:
        raise CredentialKeyError(f"the credential key file {path} holds no key")
    return keys


class CredentialStore:
    """Encrypted per-user, per-origin credentials in the build database (short awaited
    queries, like `db.Store`). Made by `await CredentialStore.open(engine, key_file)`."""

    def __init__(self, engine: AsyncEngine, key_file: str, max_per_user: int = 10) -> None:
        self.engine = engine
        self.key_file = key_file
        self.max_per_user = max_per_user
        self._fernet: Any = None

    @classmethod
    async def open(
        cls, engine: AsyncEngine, key_file: str, max_per_user: int = 10
    ) -> CredentialStore:
        """The store, its table made or upgraded (it is in the builds schema), its key file
        checked (and rows re-encrypted when the file holds more than one key)."""
        store = cls(engine, key_file, max_per_user)
        await upgrade_schema(engine, "builds")
        keys = load_keys(key_file, create=False)  # checked at start-up; made on first use
        if keys:
            store._use(keys)
            if len(keys) > 1:
                await store.rotate()
        return store

    def __repr__(self) -> str:
        return "CredentialStore()"

    def _use(self, keys: list[bytes]) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except ValueError:
            raise CredentialKeyError(
                f"the credential key file {self.key_file} holds a line that is not a Fernet "
                "key (32 url-safe base64-encoded bytes)"
            ) from None

    @property
    def fernet(self) -> Any:
        if self._fernet is None:
            self._use(load_keys(self.key_file, create=True))
        return self._fernet

    def _seal(self, user: str, origin: str, token: str, username: str) -> str:
        plain = json.dumps({"u": user, "o": origin, "t": token, "n": username})
        return str(self.fernet.encrypt(plain.encode()).decode("ascii"))

    def _open(self, user: str, origin: str, secret: str) -> GitAuth | None:
        from cryptography.fernet import InvalidToken

        if self._fernet is None:
            return None  # no key file (yet): nothing stored could be read
        try:
            data = json.loads(self._fernet.decrypt(secret.encode("ascii")))
        except (InvalidToken, ValueError):
            return None
        if data.get("u") != user or data.get("o") != origin:
            return None
        return GitAuth(origin=origin, token=str(data["t"]), username=str(data.get("n", "")))

    async def put(self, user: str, origin: str, token: str, username: str = "") -> bool:
        """Store (or replace) `user`'s credential for `origin`; True if it replaced one."""
        row = {"user": user, "origin": origin, "secret": self._seal(user, origin, token, username),
               "created": time.time()}  # fmt: skip
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(ForgeCredential).where(
                    ForgeCredential.user == user, ForgeCredential.origin == origin
                )
            )
            gone = result.rowcount
            await conn.execute(insert(ForgeCredential), [row])
        return bool(gone)

    async def delete(self, user: str, origin: str) -> bool:
        q = delete(ForgeCredential).where(
            ForgeCredential.user == user, ForgeCredential.origin == origin
        )
        async with self.engine.begin() as conn:
            return bool((await conn.execute(q)).rowcount)

    async def listing(self, user: str) -> list[dict[str, Any]]:
        """`[{origin, created}]` of `user`'s credentials: never the token."""
        q = select(ForgeCredential.origin, ForgeCredential.created).where(
            ForgeCredential.user == user
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(ForgeCredential.origin))).all()
        return [{"origin": origin, "created": created} for origin, created in rows]

    async def count(self, user: str) -> int:
        q = select(func.count()).where(ForgeCredential.user == user)
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar() or 0)

    async def has(self, user: str, origin: str) -> bool:
        return any(row["origin"] == origin for row in await self.listing(user))

    async def get(self, user: str, origin: str) -> GitAuth | None:
        q = select(ForgeCredential.secret).where(
            ForgeCredential.user == user, ForgeCredential.origin == origin
        )
        async with self.engine.connect() as conn:
            secret = (await conn.execute(q)).scalar()
        return None if secret is None else self._open(user, origin, str(secret))

    async def rotate(self) -> int:
        """Re-encrypt every row with the first key; the number of rows rewritten (rows no
        key opens are left as they are: they read as no credential)."""
        from cryptography.fernet import InvalidToken

        done = 0
        async with self.engine.begin() as conn:
            rows = (await conn.execute(select(ForgeCredential.user, ForgeCredential.origin,
                                       ForgeCredential.secret))).all()  # fmt: skip
            for user, origin, secret in rows:
                try:
                    new = self.fernet.rotate(secret.encode("ascii")).decode("ascii")
                except InvalidToken:
                    continue
                done += 1
                await conn.execute(
                    update(ForgeCredential)
                    .where(ForgeCredential.user == user, ForgeCredential.origin == origin)
                    .values(secret=new)
                )
        return done


class FancyEnvCredentials(Configurable):
    """Private repositories: users' own forge tokens (see docs/howto-private-repos.md)."""

    enabled = Bool(
        True,
        help="Let users store a forge credential (a token per Git host) on the service's "
        "`credentials` page and build private repositories with it. Off: no page, no API, "
        "and every repository is fetched anonymously.",
    ).tag(config=True)
    key_file = Unicode(
        help="File holding the key that encrypts the stored credentials (Fernet, one key a "
        "line: the first encrypts, all decrypt). Default: `credentials.key` in the service's "
        "state directory (its working directory). Made with mode 0600 on first use; the "
        "service refuses to start when it is readable by group or others. Back it up apart "
        "from the database: without it the stored credentials cannot be read (users then "
        "store theirs again).",
    ).tag(config=True)
    max_per_user = Int(
        10,
        help="How many hosts one user may store a credential for (0 = no limit).",
    ).tag(config=True)

    @default("key_file")
    def _key_file_default(self) -> str:
        return os.path.abspath("credentials.key")

    async def make_store(self, engine: AsyncEngine) -> CredentialStore | None:
        """The store (None when turned off); CredentialKeyError for an unsafe key file."""
        if not self.enabled:
            return None
        return await CredentialStore.open(engine, self.key_file, self.max_per_user)


async def attach_credentials(app: Any, service: Any) -> None:
    """Give `service` (a BuildService) the credential store configured on `app` (BuilderApp):
    `c.FancyEnvCredentials.*`, the table in the build database, the page under the prefix."""
    config = FancyEnvCredentials(parent=app)
    service.access.credentials = await config.make_store(service.store.engine)
    service.access.page_url = f"{app.service_prefix}credentials"
