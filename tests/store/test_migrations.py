"""Migrations make exactly the models' schema; a database behind the code is refused with the
command that fixes it; an upgrade copies the SQLite file first."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from bot.store import (
    SchemaOutOfDate,
    current_revision,
    ensure_current,
    head_revision,
    make_engine,
    open_ledger,
    upgrade,
)
from bot.store.db import migrations_dir
from bot.store.models import Base

NEXT_REVISION = '''"""A later revision, for tests: a note on each rebalance."""

import sqlalchemy as sa
from alembic import op

revision = "9002"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rebalances") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rebalances") as batch:
        batch.drop_column("note")
'''


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


@pytest.fixture
def later_migrations(tmp_path: Path) -> Path:
    """Our migrations plus one more revision: the code has moved on, the database has not."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "9002_note.py").write_text(NEXT_REVISION.format(head=head_revision()))
    return folder


def test_upgrade_of_an_empty_database_yields_exactly_the_models_schema(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "new.db")
    assert upgrade(url) == (None, head_revision())
    engine = make_engine(url)
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []


def test_schema_comparison_notices_a_column_the_models_lack(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "drift.db")
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE fills ADD COLUMN stray TEXT"))
    assert [d[0] for d in schema_differences(engine)] == ["remove_column"]  # type: ignore[index]


def test_migrations_render_portable_postgresql_ddl() -> None:
    out = io.StringIO()
    cfg = Config(output_buffer=out)
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", "postgresql://hedgebot@localhost/hedgebot")
    command.upgrade(cfg, "head", sql=True)
    ddl = out.getvalue()
    assert "CREATE TABLE fills" in ddl
    assert "fee NUMERIC(36, 18) NOT NULL" in ddl
    assert "ts TIMESTAMP WITH TIME ZONE NOT NULL" in ddl
    assert "FLOAT" not in ddl.upper().replace("FLOAT(", "")


def test_ensure_current_on_an_empty_database_says_to_run_db_upgrade(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "empty.db"))
    with pytest.raises(SchemaOutOfDate) as raised:
        ensure_current(engine)
    assert str(raised.value) == "database has no schema: run `hedgebot db upgrade`"


def test_ensure_current_when_the_database_is_behind_names_both_revisions_and_the_command(
    tmp_path: Path, later_migrations: Path
) -> None:
    url = sqlite_url(tmp_path / "old.db")
    upgrade(url)
    with pytest.raises(SchemaOutOfDate) as raised:
        ensure_current(make_engine(url), migrations=later_migrations)
    assert str(raised.value) == (
        f"database at revision {head_revision()}, hedgebot needs 9002: run `hedgebot db upgrade`"
    )


def test_open_ledger_refuses_a_database_behind_the_code_unless_asked_to_create(
    tmp_path: Path, later_migrations: Path
) -> None:
    url = sqlite_url(tmp_path / "old.db")
    with pytest.raises(SchemaOutOfDate, match="no schema"):
        open_ledger(url)
    open_ledger(url, create=True).close()
    with pytest.raises(SchemaOutOfDate, match="hedgebot db upgrade"):
        open_ledger(url, migrations=later_migrations)
    ledger = open_ledger(url, create=True, migrations=later_migrations)
    assert current_revision(ledger.engine) == "9002"


def test_upgrade_copies_the_sqlite_file_before_migrating(
    tmp_path: Path, later_migrations: Path
) -> None:
    db = tmp_path / "ledger.db"
    old = head_revision()
    upgrade(sqlite_url(db))
    engine = make_engine(sqlite_url(db))
    with engine.begin() as conn:  # a row that lives only in the WAL until a checkpoint
        conn.execute(
            text(
                "INSERT INTO trading_state (scope, state, reason, updated_at) "
                "VALUES ('global', 'halted', 'before upgrade', '2025-03-01 12:00:00.000000')"
            )
        )

    assert upgrade(sqlite_url(db), migrations=later_migrations) == (old, "9002")

    backup = tmp_path / f"ledger.db.bak-{old}"
    copy = sqlite3.connect(backup)
    try:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchall() == [(old,)]
        assert copy.execute("SELECT reason FROM trading_state").fetchall() == [("before upgrade",)]
        columns = [row[1] for row in copy.execute("PRAGMA table_info(rebalances)")]
        assert "note" not in columns
    finally:
        copy.close()
    assert current_revision(engine) == "9002"


def test_upgrade_keeps_an_earlier_backup_of_the_same_revision(
    tmp_path: Path, later_migrations: Path
) -> None:
    db = tmp_path / "ledger.db"
    old = head_revision()
    upgrade(sqlite_url(db))
    earlier = tmp_path / f"ledger.db.bak-{old}"
    earlier.write_bytes(b"pristine copy from a failed attempt")
    upgrade(sqlite_url(db), migrations=later_migrations)
    assert earlier.read_bytes() == b"pristine copy from a failed attempt"
    assert (tmp_path / f"ledger.db.bak-{old}.1").is_file()


def test_upgrade_of_a_new_file_or_one_at_head_makes_no_copy(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "fresh.db")
    upgrade(url)
    assert upgrade(url) == (head_revision(), head_revision())
    assert sorted(p.name for p in tmp_path.glob("*.bak-*")) == []


def test_a_database_at_a_revision_the_code_does_not_know_is_refused_as_newer(
    tmp_path: Path, later_migrations: Path
) -> None:
    url = sqlite_url(tmp_path / "newer.db")
    upgrade(url, migrations=later_migrations)
    with pytest.raises(SchemaOutOfDate, match="revision 9002, which this hedgebot does not know"):
        ensure_current(make_engine(url))
    with pytest.raises(SchemaOutOfDate, match="newer hedgebot"):
        upgrade(url)


def test_a_database_with_tables_but_no_revision_is_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "foreign.db")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE trades (id INTEGER PRIMARY KEY)"))
    with pytest.raises(SchemaOutOfDate, match="no hedgebot revision"):
        upgrade(url)
    with pytest.raises(SchemaOutOfDate, match="no hedgebot revision"):
        ensure_current(engine)


def test_sqlite_engine_enforces_foreign_keys_with_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "pragmas.db"))
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000


def test_an_order_event_for_an_unrecorded_order_violates_the_foreign_key(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "fk.db")
    upgrade(url)
    with pytest.raises(Exception, match="FOREIGN KEY"), make_engine(url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO order_events (label, ts, status, detail) "
                "VALUES ('hb-ghost', '2025-03-01 12:00:00.000000', 'open', '')"
            )
        )
