"""Incremental exports, core logic (no Prefect): new slides, release ids, ledger, shared key."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from slidegate.collection import (
    PUBLISHED_ROWS,
    export_release_id,
    load_collection,
    new_slides,
    plan_export,
    published_slide_ids,
    record_export,
)
from slidegate.errors import SpecError
from slidegate.pseudonym import load_or_create_key
from slidegate.spec import load_spec

DAY = dt.date(2026, 11, 24)


def test_new_slides_keeps_cohort_order_and_skips_published() -> None:
    assert new_slides(["c", "a", "b", "d"], {"a", "d"}) == ["c", "b"]
    assert new_slides(["a"], {"a"}) == []


def test_release_id_is_a_valid_release_id_and_unique_per_day() -> None:
    assert export_release_id("crc-collection", DAY, []) == "crc-collection-2026-11-24"
    taken = {"crc-collection-2026-11-24", "crc-collection-2026-11-24.2"}
    assert export_release_id("crc-collection", DAY, taken) == "crc-collection-2026-11-24.3"


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    src = tmp_path / "data" / "slides"
    src.mkdir(parents=True)
    for name in ("a.svs", "b.svs", "c.svs"):
        (src / name).write_bytes(b"x")
    pd.DataFrame(
        {"slide": ["a.svs", "b.svs"], "patient": ["P1", "P2"], "age": ["61", "62"]}
    ).to_csv(tmp_path / "data" / "cohort.csv", index=False)
    spec = tmp_path / "data" / "collection.yaml"
    spec.write_text(
        "collection: crc-collection\nsource: slides\ncohort: cohort.csv\n"
        "profile: restricted\ntarget: ../out\n"
    )
    return spec


def test_collection_spec_is_strict(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("collection: a/b\nsource: s\ncohort: c\nprofile: p\ntarget: t\n")
    with pytest.raises(SpecError, match="collection id"):
        load_collection(bad, tmp_path)
    bad.write_text("collection: a\nrelease: r\nsource: s\ncohort: c\nprofile: p\ntarget: t\n")
    with pytest.raises(SpecError, match="unknown key 'release'"):
        load_collection(bad, tmp_path)


def test_plan_writes_a_loadable_spec_of_new_slides_and_shares_the_key(
    collection: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    coll = load_collection(collection, work)
    releases = work / "releases"
    first = plan_export(coll, DAY, releases)
    assert first.release == "crc-collection-2026-11-24" and first.new == ("a.svs", "b.svs")
    spec = load_spec(first.spec_path)  # the release machinery accepts it as is
    assert [s.slide_id for s in spec.slides] == ["a.svs", "b.svs"]
    assert spec.target == str((tmp_path / "out").resolve())
    key1 = load_or_create_key(releases / first.release / "private" / "key")
    assert key1.key_id == load_or_create_key(coll.key_path).key_id

    # the first export published a.svs only (b.svs withheld): b.svs is still new next time
    record_export(coll, first.release, DAY, ["a.svs"])
    cohort = pd.read_csv(collection.parent / "cohort.csv", dtype=str)
    cohort.loc[2] = ["c.svs", "P3", "63"]  # a slide added to the collection
    cohort.to_csv(collection.parent / "cohort.csv", index=False)
    second = plan_export(coll, DAY, releases, taken_releases={first.release})
    assert second.release == "crc-collection-2026-11-24.2"
    assert second.new == ("b.svs", "c.svs") and second.published_before == 1
    key2 = load_or_create_key(releases / second.release / "private" / "key")
    assert key2.key_id == key1.key_id  # stable pseudonyms across the collection's exports
    rows = pd.read_csv(releases / second.release / PUBLISHED_ROWS, dtype=str)
    assert rows["slide"].tolist() == ["a.svs"]  # scored with the new ones, never released again
    assert str(work.resolve()) not in str(coll.spec.target)
    ledger = json.loads(coll.ledger_path.read_text())
    assert ledger["releases"][0]["slides"] == ["a.svs"]


def test_nothing_new_writes_no_spec(collection: Path, tmp_path: Path) -> None:
    coll = load_collection(collection, tmp_path / "work")
    record_export(coll, "crc-collection-2026-11-23", DAY, ["a.svs", "b.svs"])
    plan = plan_export(coll, DAY, tmp_path / "work" / "releases")
    assert plan.new == () and not plan.spec_path.exists()


def test_published_slide_ids_reads_only_approved(tmp_path: Path) -> None:
    slides = tmp_path / "slides.json"
    slides.write_text(
        json.dumps(
            [
                {"slide": "s-1", "status": "approved"},
                {"slide": "s-2", "status": "withheld"},
                {"slide": "s-3", "status": "quarantined"},
            ]
        )
    )
    got = published_slide_ids(slides, {"a.svs": "s-1", "b.svs": "s-2", "c.svs": "s-3"})
    assert got == ["a.svs"]
