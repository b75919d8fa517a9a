"""Ordered, recorded schema migrations per component (platform, catalog, ...)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from shopstream_platform.db.database import Database
from shopstream_platform.db.types import UtcDateTime

log = logging.getLogger(__name__)

_meta = MetaData()
schema_migrations = Table(
    "schema_migrations",
    _meta,
    Column("component", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", UtcDateTime(), nullable=False),
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    # Runs on a synchronous connection inside the migration's transaction.
    apply: Callable[[Connection], None]


def create_tables(version: int, name: str, metadata: MetaData) -> Migration:
    """A service's first migration: create its declared tables.

    Only for the first version: later schema changes are new migrations with explicit DDL, never
    edits of what this one created.
    """
    return Migration(version, name, lambda conn: metadata.create_all(conn))


def _apply(session: Session, migration: Migration) -> None:
    migration.apply(session.connection())


async def migrate(db: Database, component: str, migrations: Sequence[Migration]) -> list[int]:
    """Apply the component's migrations not yet recorded, in version order; returns those applied."""
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError(
            f"{component} migrations must have unique, increasing versions: {versions}"
        )
    async with db.transaction() as session:
        await session.run_sync(lambda s: _meta.create_all(s.connection()))
        done = set(
            (
                await session.execute(
                    select(schema_migrations.c.version).where(
                        schema_migrations.c.component == component
                    )
                )
            ).scalars()
        )
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        async with db.transaction() as session:
            await session.run_sync(_apply, migration)
            await session.execute(
                schema_migrations.insert().values(
                    component=component,
                    version=migration.version,
                    name=migration.name,
                    applied_at=datetime.now(UTC),
                )
            )
        applied.append(migration.version)
        log.info(
            "migration applied",
            extra={
                "component": component,
                "version": migration.version,
                "migration": migration.name,
            },
        )
    return applied
