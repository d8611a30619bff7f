"""Shared fixtures. Real scanner files live beside the repository in ../shared/data/real-slides."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import s3_service as s3_service  # real SeaweedFS, one per session

REPO = Path(__file__).resolve().parent.parent
REAL_SLIDES = REPO.parent / "shared" / "data" / "real-slides"


def _data_home(path: Path) -> Iterator[None]:
    """$XDG_DATA_HOME (platformdirs' per-user data folder: the default registry) pointed at a
    temporary folder, so no test ever reads or writes the user's real registry."""
    import os

    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(path)
    yield
    if old is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = old


@pytest.fixture(scope="session", autouse=True)
def _session_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield from _data_home(tmp_path_factory.mktemp("data-home"))


@pytest.fixture(scope="module", autouse=True)
def _module_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each module's fixtures, and each test, get a registry of their own (as each had its
    own work area and ledger before the registry)."""
    yield from _data_home(tmp_path_factory.mktemp("data-home"))


@pytest.fixture(autouse=True)
def _test_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield from _data_home(tmp_path_factory.mktemp("data-home"))


@pytest.fixture(scope="session")
def real_slides() -> Path:
    if not REAL_SLIDES.is_dir():
        pytest.skip(f"real slide files not found at {REAL_SLIDES}")
    return REAL_SLIDES


@pytest.fixture(scope="session")
def policies_dir() -> Path:
    return REPO / "policies"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real Prefect server on 127.0.0.1 (own home, own port), for the whole session.

    Sets PREFECT_API_URL in this process's environment so that Dask worker processes spawned
    later inherit it (otherwise each worker would start its own temporary server).
    """
    import os

    from flows.server import offline_env, start_server, stop_pid

    home = tmp_path_factory.mktemp("prefect-home")
    offline_env(os.environ, home)
    os.environ["PREFECT_HOME"] = str(home)
    server = start_server(home, free_port(), os.environ)
    os.environ["PREFECT_API_URL"] = server.api_url
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield server
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    assert server.pid is not None
    stop_pid(server.pid)
    os.environ.pop("PREFECT_API_URL", None)
