"""Shared fixtures of the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def cluster():  # type: ignore[no-untyped-def]
    """A one-worker LocalCluster on loopback for the module's release runs."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as c:
        yield c
