"""Release layout, resume, immutability and verification, on a folder and on real S3."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from slidegate.egress.gate import open_gate
from slidegate.errors import SpecError
from slidegate.publish import (
    ObjectRecord,
    list_releases,
    publish_files,
    publish_tree,
    verify_release,
    write_manifest,
)
from tests.publish.conftest import CountingStore

RELEASE = "crc-2026-q4"


def publish_all(store: CountingStore, tree: Path, release: str = RELEASE) -> list[ObjectRecord]:
    records = publish_tree(open_gate(store), release, tree / "slides", "slides", concurrency=3)
    records += publish_files(open_gate(store), release, {"cohort.csv": tree / "cohort.csv"})
    records += publish_tree(open_gate(store), release, tree / "reports", "reports")
    write_manifest(open_gate(store), release, records, {"slides": 2, "profile": "open-access"})
    return records


def test_publish_then_verify(store: CountingStore, tree: Path, tmp_path: Path) -> None:
    records = publish_all(store, tree)
    assert all(r.uploaded for r in records)
    assert len(records) == 8
    assert verify_release(store, RELEASE) == []
    assert list_releases(store) == [RELEASE]

    keys = store.list_keys(RELEASE)
    assert f"{RELEASE}/slides/s-00000000000000aa.ome.zarr/0/c/0/0/0" in keys
    assert store.puts[-2:] == [f"{RELEASE}/SHA256SUMS", f"{RELEASE}/manifest.json"]  # last
    manifest = json.loads(store.get_bytes(f"{RELEASE}/manifest.json"))
    assert manifest["release"] == RELEASE
    assert manifest["info"] == {"slides": 2, "profile": "open-access"}
    assert [o["path"] for o in manifest["objects"]] == sorted(r.key for r in records)
    sums = store.get_bytes(f"{RELEASE}/SHA256SUMS")
    assert manifest["sha256sums"] == hashlib.sha256(sums).hexdigest()

    # the real `sha256sum -c` accepts a downloaded copy of the release
    copy = tmp_path / "download"
    for key in keys:
        dest = copy / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(store.get_bytes(key))
    run = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=copy / RELEASE, capture_output=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count(b": OK") == 8


def test_rerun_uploads_nothing(store: CountingStore, tree: Path) -> None:
    first = publish_all(store, tree)
    store.puts.clear()
    second = publish_all(store, tree)
    assert store.puts == []
    assert not any(r.uploaded for r in second)
    assert [r.entry() for r in first] == [r.entry() for r in second]


def test_interrupted_publish_resumes(store: CountingStore, tree: Path) -> None:
    publish_files(open_gate(store), RELEASE, {"cohort.csv": tree / "cohort.csv"})  # a partial run
    assert list_releases(store) == []  # no manifest, no release
    store.puts.clear()
    records = publish_all(store, tree)
    assert f"{RELEASE}/cohort.csv" not in store.puts
    assert len([r for r in records if r.uploaded]) == 7
    assert verify_release(store, RELEASE) == []


def test_tampered_missing_and_extra_objects_are_reported(store: CountingStore, tree: Path) -> None:
    publish_all(store, tree)
    chunk = "slides/s-00000000000000bb.ome.zarr/0/c/0/0/0"
    original = store.get_bytes(f"{RELEASE}/{chunk}")
    # the bytes change but the recorded checksum still claims the original one
    store.put_bytes(f"{RELEASE}/{chunk}", b"tampered", hashlib.sha256(original).hexdigest())
    store.put_bytes(f"{RELEASE}/slides/extra.txt", b"x", hashlib.sha256(b"x").hexdigest())
    store.delete(f"{RELEASE}/reports/risk.json")
    assert verify_release(store, RELEASE) == [
        "missing object: reports/risk.json",
        "unexpected object: slides/extra.txt",
        f"checksum mismatch: {chunk}",
    ]
    assert verify_release(store, "no-such-release") == [
        "release 'no-such-release' has no manifest.json"
    ]


def test_released_version_is_immutable(store: CountingStore, tree: Path) -> None:
    records = publish_all(store, tree)
    # a different object list for the same release id is refused
    with pytest.raises(SpecError, match="already exists and is immutable; choose a new release"):
        write_manifest(open_gate(store), RELEASE, records[:-1], {"slides": 1})
    # so is changing an object before any byte is written
    (tree / "cohort.csv").write_text("pseudonym,age_band\ns-00000000000000aa,70-79\n")
    store.puts.clear()
    with pytest.raises(SpecError, match="immutable"):
        publish_files(open_gate(store), RELEASE, {"cohort.csv": tree / "cohort.csv"})
    with pytest.raises(SpecError, match="immutable"):
        publish_files(open_gate(store), RELEASE, {"new.txt": tree / "cohort.csv"})
    assert store.puts == []
    assert verify_release(store, RELEASE) == []
    # a new release id is fine
    publish_all(store, tree, release="crc-2026-q4-r2")
    assert list_releases(store) == [RELEASE, "crc-2026-q4-r2"]


def test_bad_keys_and_reserved_names_refused(store: CountingStore, tree: Path) -> None:
    for key in ("../x", "/abs", "a//b", "a\nb"):
        with pytest.raises(SpecError, match="invalid object key"):
            publish_files(open_gate(store), RELEASE, {key: tree / "cohort.csv"})
    with pytest.raises(SpecError, match="written by slidegate"):
        publish_files(open_gate(store), RELEASE, {"manifest.json": tree / "cohort.csv"})
    assert store.puts == []


def test_manifest_drops_stale_objects_and_needs_uploaded_ones(
    store: CountingStore, tree: Path
) -> None:
    # an interrupted earlier run uploaded a slide that is withheld now
    publish_tree(open_gate(store), RELEASE, tree / "slides", "slides")
    records = publish_files(open_gate(store), RELEASE, {"cohort.csv": tree / "cohort.csv"})
    missing = ObjectRecord("reports/risk.json", 10, "0" * 64)
    with pytest.raises(SpecError, match="1 listed object"):
        write_manifest(open_gate(store), RELEASE, [*records, missing], {})
    assert list_releases(store) == []
    write_manifest(open_gate(store), RELEASE, records, {})
    assert store.list_keys(RELEASE) == [
        f"{RELEASE}/SHA256SUMS",
        f"{RELEASE}/cohort.csv",
        f"{RELEASE}/manifest.json",
    ]
    assert verify_release(store, RELEASE) == []
