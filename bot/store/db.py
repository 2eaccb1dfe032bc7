"""Engines and schema versions: open a database, bring it to the code's revision, or refuse.

The schema is only ever made by the Alembic revisions in ``migrations/`` (found beside the
``bot`` package: hedgebot is installed editable). A program that opens a ledger calls
:func:`ensure_current`, which refuses a database that is behind (or ahead of) the code with the
command that fixes it, rather than failing later on a missing column. :func:`upgrade` copies a
SQLite file before touching it, so a failed migration never costs the ledger.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, inspect

from bot.store.ledger import Ledger

log = structlog.get_logger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another process's lock
UPGRADE_HINT = "run `hedgebot db upgrade`"
VERSION_TABLE = "alembic_version"


class SchemaOutOfDate(Exception):
    """The database's schema is not the one this hedgebot was written for."""


def migrations_dir() -> Path:
    """The repository's ``migrations/`` folder, found from this file rather than the cwd."""
    root = Path(__file__).resolve().parents[2]
    found = root / "migrations"
    if not (found / "env.py").is_file() or not (found / "versions").is_dir():
        raise FileNotFoundError(
            f"hedgebot's Alembic migrations are not at {found}: install hedgebot from its "
            "repository with `pip install -e .` so that migrations/ sits beside bot/"
        )
    return found


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout on every connect."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")  # readers (status, report) never block the daemon
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _config(migrations: Path | None, connection: Any = None) -> Config:
    cfg = Config()
    location = str(migrations or migrations_dir())
    cfg.set_main_option("script_location", location.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _script(migrations: Path | None) -> ScriptDirectory:
    return ScriptDirectory.from_config(_config(migrations))


def head_revision(*, migrations: Path | None = None) -> str:
    """The revision the code expects (the single head of ``migrations/versions``)."""
    head = _script(migrations).get_current_head()
    if head is None:
        raise FileNotFoundError("no Alembic revisions in migrations/versions")
    return head


def _known(revision: str, migrations: Path | None) -> bool:
    try:
        return _script(migrations).get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(engine: Engine) -> str | None:
    """The revision the database is stamped at; None for a database without a schema."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _user_tables(engine: Engine) -> list[str]:
    return sorted(t for t in inspect(engine).get_table_names() if t != VERSION_TABLE)


def _check(engine: Engine, migrations: Path | None) -> tuple[str | None, str]:
    """(current, head); raises SchemaOutOfDate when no upgrade can make the database current."""
    current, head = current_revision(engine), head_revision(migrations=migrations)
    if current is None:
        tables = _user_tables(engine)
        if tables:
            raise SchemaOutOfDate(
                f"database has tables ({', '.join(tables[:5])}…) but no hedgebot revision: it was "
                "not made by `hedgebot db upgrade`; point database.url at a new file"
            )
    elif current != head and not _known(current, migrations):
        raise SchemaOutOfDate(
            f"database at revision {current}, which this hedgebot does not know (it needs "
            f"{head}): was it written by a newer hedgebot?"
        )
    return current, head


def ensure_current(engine: Engine, *, migrations: Path | None = None) -> None:
    """Return if the database is at the code's revision; otherwise say what to run."""
    current, head = _check(engine, migrations)
    if current == head:
        return
    if current is None:
        raise SchemaOutOfDate(f"database has no schema: {UPGRADE_HINT}")
    raise SchemaOutOfDate(f"database at revision {current}, hedgebot needs {head}: {UPGRADE_HINT}")


def _sqlite_file(engine: Engine) -> Path | None:
    url = engine.url
    if engine.dialect.name != "sqlite" or url.query.get("mode") == "memory":
        return None
    if not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return path if path.is_file() else None


def _backup_path(db_file: Path, revision: str) -> Path:
    """``<file>.bak-<revision>``; an older copy of that name is kept (it is the pristine one)."""
    candidate = db_file.with_name(f"{db_file.name}.bak-{revision}")
    n = 1
    while candidate.exists():
        candidate = db_file.with_name(f"{db_file.name}.bak-{revision}.{n}")
        n += 1
    return candidate


def _backup_sqlite(engine: Engine, target: Path) -> None:
    """Copy through SQLite's backup API: a consistent copy that includes the WAL's pages."""
    with engine.connect() as conn:
        source = conn.connection.driver_connection
        if not isinstance(source, sqlite3.Connection):
            raise TypeError(f"cannot back up through driver {type(source).__name__}")
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()


def upgrade_engine(engine: Engine, *, migrations: Path | None = None) -> tuple[str | None, str]:
    """Bring the database behind ``engine`` to the head revision; returns (before, after)."""
    before, head = _check(engine, migrations)
    if before == head:
        return before, head
    db_file = _sqlite_file(engine)
    if db_file is not None and before is not None:
        backup = _backup_path(db_file, before)
        _backup_sqlite(engine, backup)
        log.info("db_backup", path=str(backup), revision=before)
    with engine.begin() as conn:
        command.upgrade(_config(migrations, conn), "head")
    after = current_revision(engine)
    if after != head:
        raise SchemaOutOfDate(f"upgrade stopped at revision {after}, expected {head}")
    log.info("db_upgraded", before=before, after=after, url=engine.url.render_as_string())
    return before, head


def upgrade(url: str, *, migrations: Path | None = None) -> tuple[str | None, str]:
    """``hedgebot db upgrade``: migrate the database at ``url`` to head; (before, after)."""
    engine = make_engine(url)
    try:
        return upgrade_engine(engine, migrations=migrations)
    finally:
        engine.dispose()


def open_ledger(url: str, *, create: bool = False, migrations: Path | None = None) -> Ledger:
    """A :class:`Ledger` on ``url``; with ``create``, upgrade first (a new file gets the schema).

    Without ``create`` a database behind the code raises :class:`SchemaOutOfDate`.
    """
    engine = make_engine(url)
    try:
        if create:
            upgrade_engine(engine, migrations=migrations)
        ensure_current(engine, migrations=migrations)
    except BaseException:
        engine.dispose()
        raise
    return Ledger(engine)
