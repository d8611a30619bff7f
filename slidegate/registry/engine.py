"""The registry's database: an engine per URL (SQLite or PostgreSQL), migrated to the newest
schema by Alembic on first use in a process.

SQLite: WAL journal, every transaction `BEGIN IMMEDIATE` (a writer takes the database lock at
the start, so two processes never interleave a read-then-write), a 30 s busy timeout. A
SIGKILL leaves either the whole transaction or nothing. PostgreSQL: through psycopg 3;
migrations hold a transaction-level advisory lock so two processes never migrate at once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from slidegate.errors import SpecError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` use psycopg 3; SQLite paths are made absolute."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        return f"sqlite:///{Path(path).expanduser().resolve()}"
    if url.startswith(("postgresql+psycopg://", "sqlite://")):
        return url
    raise SpecError(
        f"registry URL scheme of {describe(url)} is not supported: use sqlite:///PATH or "
        "postgresql://USER@HOST/DB (SLIDEGATE_REGISTRY_URL)"
    )


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the registry URL"


def sqlite_path(url: str) -> Path | None:
    url = normalise_url(url)
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def engine_for(url: str) -> Engine:
    """The migrated engine of `url` (created once per process)."""
    url = normalise_url(url)
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _create(url)
            migrate(engine)
            _ENGINES[url] = engine
    return engine


def _create(url: str) -> Engine:
    path = sqlite_path(url)
    if path is None:
        return create_engine(url, pool_pre_ping=True)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None  # our own BEGIN below, not the driver's
        cur = dbapi.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    if not path.exists():
        path.touch(mode=0o600)
    return engine


def migrate(engine: Engine) -> None:
    """Alembic `upgrade head`, inside one transaction that holds the database (SQLite) or an
    advisory lock (PostgreSQL)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7316240915)"))
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def dispose_all() -> None:
    """Close every pooled connection (tests; a forked process)."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()
