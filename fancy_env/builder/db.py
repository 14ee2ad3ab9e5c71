"""Build state in SQLAlchemy: builds, who asked for them, their whole logs, images.

SQLite by default (WAL journal, so readers never wait for the writer), PostgreSQL on a
cluster; both through SQLAlchemy's asyncio API (`fancy_env.dbengine`: aiosqlite, psycopg 3),
so no query ever blocks the event loop. `await Store.open(url)` makes the engine and the
schema; every method is a coroutine running one short indexed statement (logs are read in
pages, written in batches).

The tables are made and upgraded at start-up by `fancy_env.migrate` (Alembic, schema
"builds", its sync `upgrade(conn, "builds")` run through `AsyncConnection.run_sync`); a
change to these models needs a revision in `fancy_env/migrations/builds/`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..dbengine import make_engine, upgrade_schema
from .events import ACTIVE_PHASES, BuildEvent


class Base(DeclarativeBase):
    pass


class Build(Base):
    __tablename__ = "builds"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    repo: Mapped[str] = mapped_column(String(2048), index=True)
    ref: Mapped[str] = mapped_column(String(255), default="")
    subdir: Mapped[str] = mapped_column(String(1024), default="")
    commit: Mapped[str] = mapped_column(String(64), default="")
    image: Mapped[str] = mapped_column(String(512), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    executor_ref: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[float] = mapped_column(Float, index=True)
    started: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished: Mapped[float | None] = mapped_column(Float, nullable=True)
    # added in 0.2: the stored log reached max_log_bytes / max_log_lines and was cut
    log_truncated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # added in 0.3: a forced build without the layer cache, and the build it replaces
    rebuild: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    rebuild_of: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # added in 0.4: what a launch pins: the manifest digest in the registry (servers start
    # `name@digest`), or the engine's image ID when there is no registry ("" = unknown)
    digest: Mapped[str] = mapped_column(String(128), default="", server_default="")
    # added in 0.4: only the requester's own forge credential opened the repository
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def to_json(self, prefix: str = "") -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "repo": self.repo,
            "ref": self.ref,
            "subdir": self.subdir,
            "commit": self.commit,
            "image": self.image,
            "status": self.status,
            "reason": self.reason,
            "cache_hit": self.cache_hit,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "log_truncated": bool(self.log_truncated),
            "rebuild": bool(self.rebuild),
            "rebuild_of": self.rebuild_of or "",
            "digest": self.digest or "",
            "private": bool(self.private),
            "events_url": f"{prefix}api/builds/{self.id}/events",
        }


class BuildUser(Base):
    """Every user who asked for a build (identical requests share one build)."""

    __tablename__ = "build_users"
    build_id: Mapped[str] = mapped_column(ForeignKey("builds.id"), primary_key=True)
    user: Mapped[str] = mapped_column(String(255), primary_key=True)


class LogLine(Base):
    __tablename__ = "log_lines"
    build_id: Mapped[str] = mapped_column(ForeignKey("builds.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    phase: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    time: Mapped[float] = mapped_column(Float)
    image: Mapped[str | None] = mapped_column(String(512), nullable=True)

    def to_event(self) -> BuildEvent:
        return BuildEvent(self.build_id, self.seq, self.phase, self.message, self.time, self.image)


class ImageRecord(Base):
    """An image this service built and pushed (the cache's memory)."""

    __tablename__ = "images"
    name: Mapped[str] = mapped_column(String(512), primary_key=True)
    repo: Mapped[str] = mapped_column(String(2048))
    commit: Mapped[str] = mapped_column(String(64))
    build_id: Mapped[str] = mapped_column(String(32))
    created: Mapped[float] = mapped_column(Float)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v  # PostgreSQL: no NUL
            for k, v in values.items()}  # fmt: skip


def _rows(events: Iterable[BuildEvent]) -> list[dict[str, Any]]:
    return [
        {
            "build_id": e.build_id,
            "seq": e.seq,
            "phase": e.phase,
            "message": e.message.replace("\x00", "\ufffd"),  # PostgreSQL text refuses NUL
            "time": e.time,
            "image": e.image,
        }
        for e in events
    ]


class Store:
    """Short awaited queries on the build tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.session: async_sessionmaker[AsyncSession] = async_sessionmaker(
            engine, expire_on_commit=False
        )

    @classmethod
    async def open(cls, url: str, engine: AsyncEngine | None = None) -> Store:
        """The store on `url` (or on an open `engine`), its tables created or upgraded."""
        engine = engine or make_engine(url)
        await upgrade_schema(engine, "builds")
        return cls(engine)

    async def add_build(
        self, build: Build, users: Iterable[str] = (), lines: Iterable[BuildEvent] = ()
    ) -> Build:
        """Insert a build, who asked for it and its first log lines, in one transaction.

        Core inserts (no unit of work): this is on the hot path of every cache hit."""
        row = {c.key: getattr(build, c.key) for c in Build.__table__.columns}
        defaults = {"ref": "", "subdir": "", "commit": "", "image": "", "reason": "",
                    "cache_hit": False, "executor_ref": "", "log_truncated": False,
                    "rebuild": False, "rebuild_of": "", "digest": "",
                    "private": False}  # fmt: skip
        for key, value in defaults.items():
            if row[key] is None:
                row[key] = value
                setattr(build, key, value)
        rows = _rows(lines)
        async with self.engine.begin() as conn:
            await conn.execute(insert(Build), [row])
            await conn.execute(
                insert(BuildUser), [{"build_id": build.id, "user": u} for u in {build.user, *users}]
            )
            if rows:
                await conn.execute(insert(LogLine), rows)
        return build

    async def add_user(self, build_id: str, user: str) -> None:
        async with self.session.begin() as s:
            if await s.get(BuildUser, (build_id, user)) is None:
                s.add(BuildUser(build_id=build_id, user=user))

    async def users(self, build_id: str) -> list[str]:
        q = select(BuildUser.user).where(BuildUser.build_id == build_id)
        async with self.engine.connect() as conn:
            return list((await conn.execute(q)).scalars())

    async def get(self, build_id: str) -> Build | None:
        async with self.session() as s:
            return await s.get(Build, build_id)

    async def update(self, build_id: str, **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(Build).where(Build.id == build_id).values(**_clean(values)))

    async def active(self) -> Sequence[Build]:
        q = select(Build).where(Build.status.in_(ACTIVE_PHASES)).order_by(Build.created)
        async with self.session() as s:
            return (await s.scalars(q)).all()

    async def history(
        self, user: str | None = None, repo: str | None = None, limit: int = 100, offset: int = 0
    ) -> Sequence[Build]:
        q = select(Build).order_by(Build.created.desc()).limit(limit).offset(offset)
        if user is not None:
            q = q.where(Build.id.in_(select(BuildUser.build_id).where(BuildUser.user == user)))
        if repo is not None:
            q = q.where(Build.repo == repo)
        async with self.session() as s:
            return (await s.scalars(q)).all()

    async def add_lines(
        self, events: Iterable[BuildEvent], build_id: str = "", **values: Any
    ) -> None:
        """Log lines (of any builds) in one executemany INSERT and (`values`) an update of
        build `build_id`, in one transaction. (A multi-row `insert().values(rows)` costs
        5-13 times the CPU: SQLAlchemy compiles its 6 parameters a row each time.)"""
        rows = _rows(events)
        if not rows and not values:
            return
        async with self.engine.begin() as conn:
            if rows:
                await conn.execute(insert(LogLine), rows)
            if values:
                q = update(Build).where(Build.id == build_id).values(**_clean(values))
                await conn.execute(q)

    async def lines(
        self, build_id: str, after: int = 0, limit: int | None = None, upto: int | None = None
    ) -> list[BuildEvent]:
        """Log lines after `after` (and up to `upto`), at most `limit` of them, by seq."""
        q = select(LogLine.seq, LogLine.phase, LogLine.message, LogLine.time, LogLine.image)
        q = q.where(LogLine.build_id == build_id, LogLine.seq > after)
        if upto is not None:
            q = q.where(LogLine.seq <= upto)
        q = q.order_by(LogLine.seq).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()  # rows (tuple-like), no ORM objects
        return [BuildEvent(build_id, seq, phase, message, t, image)
                for seq, phase, message, t, image in rows]  # fmt: skip

    async def pages(
        self, build_id: str, after: int = 0, page: int = 500, upto: int | None = None
    ) -> AsyncIterator[list[BuildEvent]]:
        """The log after `after` in pages of at most `page` lines (bounded memory)."""
        while True:
            events = await self.lines(build_id, after, limit=page, upto=upto)
            if events:
                yield events
                after = events[-1].seq
            if len(events) < page:
                return

    async def log_size(self, build_id: str) -> tuple[int, int]:
        """(lines, characters) stored for a build: what counts against the log cap."""
        q = select(func.count(), func.coalesce(func.sum(func.length(LogLine.message)), 0))
        async with self.engine.connect() as conn:
            count, size = (await conn.execute(q.where(LogLine.build_id == build_id))).one()
        return int(count), int(size)

    async def last_seq(self, build_id: str) -> int:
        q = select(func.max(LogLine.seq)).where(LogLine.build_id == build_id)
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar() or 0)

    async def image(self, name: str) -> ImageRecord | None:
        async with self.session() as s:
            return await s.get(ImageRecord, name)

    async def add_image(self, name: str, repo: str, commit: str, build_id: str) -> None:
        async with self.session.begin() as s:
            await s.merge(
                ImageRecord(
                    name=name, repo=repo, commit=commit, build_id=build_id, created=time.time()
                )
            )

    async def _exists(self, q: Any) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(q.limit(1))).first() is not None

    async def requested(self, user: str, image: str) -> bool:
        """Whether `user` asked for (or joined, or hit in the cache) a build of `image`."""
        q = select(Build.id).join(BuildUser, BuildUser.build_id == Build.id)
        return await self._exists(q.where(Build.image == image, BuildUser.user == user))

    async def last_rebuild(self, user: str, image: str) -> float | None:
        """When the newest rebuild of `image` that `user` asked for (or joined) was created."""
        q = select(func.max(Build.created)).join(BuildUser, BuildUser.build_id == Build.id)
        q = q.where(Build.image == image, BuildUser.user == user, Build.rebuild.is_(True))
        async with self.engine.connect() as conn:
            value = (await conn.execute(q)).scalar()
        return None if value is None else float(value)

    async def private_image(self, image: str) -> bool:
        """Whether a build of `image` (any status) needed its requester's credential."""
        return await self._exists(
            select(Build.id).where(Build.image == image, Build.private.is_(True))
        )

    async def private_repo(self, repo: str) -> bool:
        """Whether a build of the repository `repo` (normalised URL) needed a credential."""
        return await self._exists(
            select(Build.id).where(Build.repo == repo, Build.private.is_(True))
        )

    async def serving_build(self, image: str) -> str:
        """The build whose image now carries the name `image` ("" if none is known)."""
        record = await self.image(image)
        if record is not None:
            return record.build_id
        q = select(Build.id).where(Build.image == image, Build.status == "built")
        async with self.engine.connect() as conn:
            found = (await conn.execute(q.order_by(Build.created.desc()).limit(1))).scalar()
        return str(found or "")

    async def close(self) -> None:
        await self.engine.dispose()
