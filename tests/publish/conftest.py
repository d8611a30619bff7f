"""Stores for the publish tests: a local folder and a bucket on a real SeaweedFS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from slidegate.publish.s3 import S3Store
from slidegate.publish.stores import LocalStore, Store
from tests.services import S3Service


class CountingStore:
    """Delegates to a real store and counts writes (the rerun must not write anything)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.puts: list[str] = []

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        self.puts.append(key)
        self.inner.put_file(key, path, sha256)

    def put_bytes(self, key: str, data: bytes, sha256: str, *, lock: bool = True) -> None:
        self.puts.append(key)
        self.inner.put_bytes(key, data, sha256, lock=lock)

    def head_sha256(self, key: str) -> str | None:
        return self.inner.head_sha256(key)

    def hash_object(self, key: str) -> str | None:
        return self.inner.hash_object(key)

    def list_keys(self, prefix: str) -> list[str]:
        return self.inner.list_keys(prefix)

    def list_children(self, prefix: str) -> list[str]:
        return self.inner.list_children(prefix)

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def describe(self) -> str:
        return self.inner.describe()


def new_bucket(service: S3Service) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    service.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def s3_bucket(s3_service: S3Service) -> str:
    """One bucket for the session (the first write to a new bucket costs ~0.2 s)."""
    return new_bucket(s3_service)


def unique_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CountingStore]:
    if request.param == "local":
        yield CountingStore(LocalStore(tmp_path / "target"))
    else:
        service: S3Service = request.getfixturevalue("s3_service")
        bucket: str = request.getfixturevalue("s3_bucket")
        yield CountingStore(S3Store(bucket, f"{unique_prefix()}/releases", service.client()))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small staged release: two slides, a cohort table and a report."""
    root = tmp_path / "staged"
    rng = np.random.default_rng(0)
    for p in ("s-00000000000000aa", "s-00000000000000bb"):
        slide = root / "slides" / f"{p}.ome.zarr"
        (slide / "0" / "c" / "0" / "0").mkdir(parents=True)
        (slide / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
        (slide / "0" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array"}')
        (slide / "0" / "c" / "0" / "0" / "0").write_bytes(rng.bytes(200_000))
    (root / "cohort.csv").write_text("pseudonym,age_band\ns-00000000000000aa,60-69\n")
    (root / "reports").mkdir()
    (root / "reports" / "risk.json").write_text('{"max_risk": 0.05}')
    return root
