"""Ledger databases for tests: a SQLite file, and a fresh schema on a real PostgreSQL server.

PostgreSQL cases need ``HEDGEBOT_TEST_PG_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:
55432/postgres``); ``.ci/run`` starts a server and sets it, elsewhere they skip and say why.
Each case gets its own schema (``search_path`` in the URL), dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PG_ENV = "HEDGEBOT_TEST_PG_URL"
BACKENDS = ("sqlite", "postgresql")


def pg_base_url() -> str:
    base = os.environ.get(PG_ENV, "")
    if not base and os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the PostgreSQL cases: {PG_ENV} is not set (see .ci/run)")
    if not base:
        pytest.skip(f"PostgreSQL case: set {PG_ENV} to a server's URL (.ci/run starts one)")
    return base


def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on ``backend``; cleaned up when the generator closes."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    base = pg_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        joiner = "&" if "?" in base else "?"
        yield f"{base}{joiner}options=-csearch_path%3D{schema}"
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty ledger database, once on SQLite and once on PostgreSQL."""
    yield from database_url(request.param, tmp_path)
