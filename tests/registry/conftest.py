"""Every registry test runs on SQLite and on a real PostgreSQL server (whole releases on
PostgreSQL: under `slow`, see test_release_registry.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgservice import PostgresService, pg_bin, postgres, url_for


@pytest.fixture(scope="session")
def pg_service() -> Iterator[PostgresService]:
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: run `make venv` (installs Debian's postgresql)")
    with postgres() as service:
        yield service


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_for(request, tmp_path)
