"""Build state in SQLAlchemy: builds, who asked for them, their whole logs, images.

SQLite by default (WAL journal, so readers never wait for the writer), any SQLAlchemy URL
works (PostgreSQL on Kubernetes). Calls are short, synchronous and indexed: each one is a
single small query (logs are read in pages), so the event loop is never held for long.

The tables are made and upgraded at start-up by `fancy_env.migrate` (Alembic, schema
"builds"); a change to these models needs a revision in `fancy_env/migrations/builds/`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .. import migrate
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Store:
    """Short synchronous queries on the build tables."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        with self.engine.connect() as conn:
            migrate.upgrade(conn, "builds")
        self.session: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    def add_build(
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
        with self.engine.begin() as conn:
            conn.execute(insert(Build), [row])
            conn.execute(
                insert(BuildUser), [{"build_id": build.id, "user": u} for u in {build.user, *users}]
            )
            rows = _rows(lines)
            if rows:
                conn.execute(insert(LogLine), rows)
        return build

    def add_user(self, build_id: str, user: str) -> None:
        with self.session.begin() as s:
            if s.get(BuildUser, (build_id, user)) is None:
                s.add(BuildUser(build_id=build_id, user=user))

    def users(self, build_id: str) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(BuildUser.user).where(BuildUser.build_id == build_id)))

    def get(self, build_id: str) -> Build | None:
        with self.session() as s:
            return s.get(Build, build_id)

    def update(self, build_id: str, **values: Any) -> None:
        values = {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v
                  for k, v in values.items()}  # fmt: skip
        with self.session.begin() as s:
            s.execute(update(Build).where(Build.id == build_id).values(**values))

    def active(self) -> Sequence[Build]:
        with self.session() as s:
            q = select(Build).where(Build.status.in_(ACTIVE_PHASES)).order_by(Build.created)
            return s.scalars(q).all()

    def history(
        self, user: str | None = None, repo: str | None = None, limit: int = 100, offset: int = 0
    ) -> Sequence[Build]:
        with self.session() as s:
            q = select(Build).order_by(Build.created.desc()).limit(limit).offset(offset)
            if user is not None:
                q = q.where(Build.id.in_(select(BuildUser.build_id).where(BuildUser.user == user)))
            if repo is not None:
                q = q.where(Build.repo == repo)
            return s.scalars(q).all()

    def add_lines(self, events: Iterable[BuildEvent]) -> None:
        rows = _rows(events)
        if rows:
            with self.session.begin() as s:
                s.execute(insert(LogLine), rows)

    def lines(
        self, build_id: str, after: int = 0, limit: int | None = None, upto: int | None = None
    ) -> list[BuildEvent]:
        """Log lines after `after` (and up to `upto`), at most `limit` of them, by seq."""
        q = select(LogLine.seq, LogLine.phase, LogLine.message, LogLine.time, LogLine.image)
        q = q.where(LogLine.build_id == build_id, LogLine.seq > after)
        if upto is not None:
            q = q.where(LogLine.seq <= upto)
        q = q.order_by(LogLine.seq).limit(limit)
        with self.engine.connect() as conn:
            return [BuildEvent(build_id, seq, phase, message, t, image)
                    for seq, phase, message, t, image in conn.execute(q)]  # fmt: skip

    def log_size(self, build_id: str) -> tuple[int, int]:
        """(lines, characters) stored for a build: what counts against the log cap."""
        q = select(func.count(), func.coalesce(func.sum(func.length(LogLine.message)), 0))
        with self.engine.connect() as conn:
            count, size = conn.execute(q.where(LogLine.build_id == build_id)).one()
        return int(count), int(size)

    def last_seq(self, build_id: str) -> int:
        with self.session() as s:
            q = select(func.max(LogLine.seq)).where(LogLine.build_id == build_id)
            return int(s.scalar(q) or 0)

    def image(self, name: str) -> ImageRecord | None:
        with self.session() as s:
            return s.get(ImageRecord, name)

    def add_image(self, name: str, repo: str, commit: str, build_id: str) -> None:
        with self.session.begin() as s:
            s.merge(
                ImageRecord(
                    name=name, repo=repo, commit=commit, build_id=build_id, created=time.time()
                )
            )

    def requested(self, user: str, image: str) -> bool:
        """Whether `user` asked for (or joined, or hit in the cache) a build of `image`."""
        q = select(Build.id).join(BuildUser, BuildUser.build_id == Build.id)
        q = q.where(Build.image == image, BuildUser.user == user).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def last_rebuild(self, user: str, image: str) -> float | None:
        """When the newest rebuild of `image` that `user` asked for (or joined) was created."""
        q = select(func.max(Build.created)).join(BuildUser, BuildUser.build_id == Build.id)
        q = q.where(Build.image == image, BuildUser.user == user, Build.rebuild.is_(True))
        with self.engine.connect() as conn:
            value = conn.execute(q).scalar()
        return None if value is None else float(value)

    def private_image(self, image: str) -> bool:
        """Whether a build of `image` (any status) needed its requester's credential."""
        q = select(Build.id).where(Build.image == image, Build.private.is_(True)).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def private_repo(self, repo: str) -> bool:
        """Whether a build of the repository `repo` (normalised URL) needed a credential."""
        q = select(Build.id).where(Build.repo == repo, Build.private.is_(True)).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def serving_build(self, image: str) -> str:
        """The build whose image now carries the name `image` ("" if none is known)."""
        record = self.image(image)
        if record is not None:
            return record.build_id
        q = select(Build.id).where(Build.image == image, Build.status == "built")
        with self.engine.connect() as conn:
            found = conn.execute(q.order_by(Build.created.desc()).limit(1)).scalar()
        return str(found or "")

    def close(self) -> None:
        self.engine.dispose()
