"""Storage of environment links (SQLAlchemy; same database URL as the build service).

Our own table, `fancy_env_links`, made or upgraded on start (`fancy_env.migrate`, schema
"links"), in whatever database the build
service uses (SQLite by default, PostgreSQL on a cluster). Only the SHA-256 digest of a code is
stored. Calls are short awaited statements through SQLAlchemy's asyncio API (see
`fancy_env.dbengine`); a listing is one query (each link's launch count is a column of its
row, not a query per link).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..builder.gc import LinkInUse
from ..dbengine import make_engine, upgrade_schema
from .links import Link, LinkSpec


class Base(DeclarativeBase):
    pass


class LinkRow(Base):
    __tablename__ = "fancy_env_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    spec_json: Mapped[str] = mapped_column(Text)
    created: Mapped[float] = mapped_column(Float, index=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    launches: Mapped[int] = mapped_column(Integer, default=0)
    last_launch: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_fancy_env_links_owner_created", "owner", "created"),)


def spec_to_json(spec: LinkSpec) -> str:
    return json.dumps(
        {
            "profile": spec.profile,
            "options": dict(spec.options),
            "repo": spec.repo,
            "ref": spec.ref,
            "commit": spec.commit,
            "follow_branch": spec.follow_branch,
            "build_id": spec.build_id,
            "autostart": spec.autostart,
            "note": spec.note,
            "subdir": spec.subdir,
            "urlpath": spec.urlpath,
        },
        sort_keys=True,
    )


def spec_from_json(text: str) -> LinkSpec:
    data: dict[str, Any] = json.loads(text)
    return LinkSpec(
        profile=data["profile"],
        options=dict(data.get("options") or {}),
        repo=data.get("repo", ""),
        ref=data.get("ref", ""),
        commit=data.get("commit", ""),
        follow_branch=bool(data.get("follow_branch")),
        build_id=data.get("build_id", ""),
        autostart=bool(data.get("autostart")),
        note=data.get("note", ""),
        subdir=data.get("subdir", ""),
        urlpath=data.get("urlpath", ""),
    )


def _to_link(row: LinkRow) -> Link:
    return Link(
        id=row.id,
        code_hash=row.code_hash,
        owner=row.owner,
        spec=spec_from_json(row.spec_json),
        created=row.created,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        launches=int(row.launches or 0),
    )


class LinkStore:
    """Create, find, list and change links (`await LinkStore.open(url)`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._session = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    async def open(cls, url: str, engine: AsyncEngine | None = None) -> LinkStore:
        """The store on `url`, or on an open `engine` to share (the build store's)."""
        engine = engine or make_engine(url)
        await upgrade_schema(engine, "links")
        return cls(engine)

    def session(self) -> AsyncSession:
        return self._session()

    async def close(self) -> None:
        await self.engine.dispose()

    async def add(self, link: Link) -> Link:
        async with self.session() as db, db.begin():
            db.add(
                LinkRow(
                    id=link.id,
                    code_hash=link.code_hash,
                    owner=link.owner,
                    spec_json=spec_to_json(link.spec),
                    created=link.created,
                    expires_at=link.expires_at,
                    revoked_at=link.revoked_at,
                    launches=0,
                )
            )
        return link

    async def by_code_hash(self, code_hash: str) -> Link | None:
        async with self.session() as db:
            q = select(LinkRow).where(LinkRow.code_hash == code_hash)
            row = (await db.scalars(q)).first()
            return _to_link(row) if row else None

    async def by_id(self, link_id: str) -> Link | None:
        async with self.session() as db:
            row = await db.get(LinkRow, link_id)
            return _to_link(row) if row else None

    async def list(self, owner: str | None = None, limit: int = 500, offset: int = 0) -> list[Link]:
        """Newest first, launch counts included, in one query; `owner=None`: everyone's."""
        query = select(LinkRow).order_by(LinkRow.created.desc(), LinkRow.id)
        query = query.limit(limit).offset(offset)
        if owner is not None:
            query = query.where(LinkRow.owner == owner)
        async with self.session() as db:
            return [_to_link(row) for row in await db.scalars(query)]

    async def created_since(self, owner: str, since: float) -> Sequence[float]:
        """Creation times of `owner`'s links after `since` (for the rate limit)."""
        query = select(LinkRow.created).where(LinkRow.owner == owner, LinkRow.created > since)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def update(self, link_id: str, **changes: Any) -> Link | None:
        allowed = {"expires_at", "revoked_at"}
        if set(changes) - allowed:
            raise ValueError(f"only {sorted(allowed)} can change")
        async with self.session() as db, db.begin():
            row = await db.get(LinkRow, link_id)
            if row is None:
                return None
            for key, value in changes.items():
                setattr(row, key, value)
            return _to_link(row)

    async def record_launch(self, link_id: str, now: float) -> None:
        # one UPDATE, so two service processes counting at once lose no launch
        launches = func.coalesce(LinkRow.launches, 0) + 1
        async with self.engine.begin() as conn:
            await conn.execute(
                update(LinkRow)
                .where(LinkRow.id == link_id)
                .values(launches=launches, last_launch=now)
            )

    async def launches(self, link_id: str) -> int:
        q = select(func.coalesce(LinkRow.launches, 0)).where(LinkRow.id == link_id)
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar() or 0)

    async def in_use(self, now: float) -> Sequence[LinkInUse]:
        """The links that keep their images (not revoked, not expired), for retention."""
        query = select(LinkRow).where(LinkRow.revoked_at.is_(None))
        async with self.session() as db:
            found = await db.scalars(query)
            rows = [r for r in found if r.expires_at is None or r.expires_at > now]
        uses = []
        for row in rows:
            spec = spec_from_json(row.spec_json)
            uses.append(LinkInUse(row.id, row.owner, spec.repo, spec.subdir, spec.commit,
                                  spec.build_id))  # fmt: skip
        return uses
