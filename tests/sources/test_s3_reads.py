"""Slides read from S3 (real SeaweedFS): ranged reads, same facts and tiles as the local file,
and the spec's checks of an S3 source before any work."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import numpy as np
import pytest

from slidegate.convert.tiles import TiffTiles
from slidegate.errors import SpecError, TransientIOError
from slidegate.formats import read_facts
from slidegate.formats.tiff import open_tiff
from slidegate.settings import Settings
from slidegate.sources import S3RangeFile, S3Ref, open_binary, slide_source
from slidegate.spec import load_spec
from tests.services import S3Service

ROW = ",P1,B1,X1,61,F,C18.7,colon,2017-12-28\n"
HEADER = "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date\n"


@pytest.fixture(scope="module")
def bucket(s3_service: S3Service, real_slides: Path) -> tuple[str, Settings]:
    """A source bucket holding the real CMU-1-Small-Region.svs and a real DICOM file."""
    name = f"src-{uuid.uuid4().hex[:10]}"
    s3 = s3_service.client()
    s3.create_bucket(Bucket=name)
    s3.upload_file(str(real_slides / "aperio-svs" / "CMU-1-Small-Region.svs"), name, "wsi/cmu.svs")
    s3.upload_file(str(real_slides / "dicom-wsi" / "highdicom_sm_image.dcm"), name, "wsi/sm.dcm")
    return name, Settings(s3_endpoint_url=s3_service.endpoint_url, s3_max_attempts=2)


@pytest.fixture(autouse=True)
def _credentials(s3_service: S3Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_service.readonly_access_key)  # read-only is enough
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_service.readonly_secret_key)


def test_tiff_inventory_reads_ranges_and_matches_local(bucket, real_slides: Path) -> None:  # type: ignore[no-untyped-def]
    name, settings = bucket
    local = real_slides / "aperio-svs" / "CMU-1-Small-Region.svs"
    ref = S3Ref(name, "wsi/cmu.svs", settings)
    before = S3RangeFile.total_fetched
    with open_tiff(ref) as tif:  # header, IFD chain and every IFD parsed, all from S3
        pages = len(tif.pages)
    parsed = S3RangeFile.total_fetched - before
    size = local.stat().st_size
    assert pages >= 3 and 0 < parsed < size / 2, (parsed, size)  # headers only, not the file
    s3_facts, local_facts = read_facts(ref, "cmu.svs"), read_facts(local, "cmu.svs")
    assert s3_facts.source_path == f"s3://{name}/wsi/cmu.svs"
    assert s3_facts.sha256 == hashlib.sha256(local.read_bytes()).hexdigest() == local_facts.sha256
    assert s3_facts.model_dump(exclude={"source_path"}) == local_facts.model_dump(
        exclude={"source_path"}
    )
    with TiffTiles(ref) as remote, TiffTiles(local) as here:
        lv_remote, lv_local = remote.level(s3_facts.levels[0]), here.level(local_facts.levels[0])
        assert lv_remote is not None and lv_local is not None
        a = remote.region(lv_remote, 100, 200, 300, 400)
        assert np.array_equal(a, here.region(lv_local, 100, 200, 300, 400))
        assert remote.raw(lv_remote, [0, 1]) == here.raw(lv_local, [0, 1])


def test_non_tiff_slide_is_fetched_to_scratch_and_removed(bucket, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name, settings = bucket
    with slide_source(f"s3://{name}/wsi/sm.dcm", settings, tmp_path) as src:
        assert isinstance(src, Path) and src.is_relative_to(tmp_path / "scratch")
        facts = read_facts(src, "sm.dcm")
        assert facts.format == "dicom"
    assert not any((tmp_path / "scratch").iterdir())  # the copy is gone after the stage
    with slide_source(f"s3://{name}/wsi/cmu.svs", settings, tmp_path) as src:
        assert isinstance(src, S3Ref)  # TIFF family: read in place with ranged GETs
        with open_binary(src) as fh:
            assert fh.read(4) == b"II*\0"


def test_dicom_series_prefix_is_fetched_whole(bucket, s3_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from slidegate.synth.dicom import write_dicom_wsi

    name, settings = bucket
    slide = write_dicom_wsi(tmp_path / "series", seed=5, size=(256, 384))
    for file in sorted(slide.path.iterdir()):
        s3_service.client().upload_file(str(file), name, f"wsi/series/{file.name}")
    local = read_facts(slide.path, "series")
    with slide_source(f"s3://{name}/wsi/series", settings, tmp_path / "work") as src:
        remote = read_facts(src, "series")
    assert remote.format == "dicom" and remote.sha256 == local.sha256
    assert len(remote.levels) == len(local.levels) and len(remote.associated) == 3


def test_mrxs_object_is_fetched_with_its_folder(bucket, s3_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from slidegate.synth.mrxs import canary_meta, write_mrxs

    name, settings = bucket
    path = write_mrxs(tmp_path / "m", "M0003", canary_meta(7), seed=7, size=(512, 512), levels=2)
    for file in sorted(p for p in path.parent.rglob("*") if p.is_file()):
        key = f"wsi/mrxs/{file.relative_to(path.parent).as_posix()}"
        s3_service.client().upload_file(str(file), name, key)
    local = read_facts(path, path.name)
    with slide_source(f"s3://{name}/wsi/mrxs/{path.name}", settings, tmp_path / "work") as src:
        remote = read_facts(src, path.name)
    assert remote.format == "mrxs" and remote.sha256 == local.sha256
    assert remote.model_dump(exclude={"source_path"}) == local.model_dump(exclude={"source_path"})


def test_unreachable_storage_is_transient_not_corrupt(tmp_path: Path) -> None:
    down = Settings(s3_endpoint_url="http://127.0.0.1:9", s3_max_attempts=1)
    with pytest.raises(TransientIOError, match=r"cannot read source object s3://b1/x\.svs"):
        read_facts(S3Ref("b1", "x.svs", down), "x.svs")


def _spec(tmp_path: Path, source: str, rows: list[str]) -> Path:
    (tmp_path / "cohort.csv").write_text(HEADER + "".join(r + ROW for r in rows))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"release: r1\nsource: {source}\ncohort: cohort.csv\nprofile: restricted\n"
        f"target: {tmp_path / 'out'}\n"
    )
    return spec


def test_spec_checks_s3_source_before_any_work(bucket, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name, settings = bucket
    ok = load_spec(_spec(tmp_path, f"s3://{name}/wsi", ["cmu.svs", "sm.dcm"]), settings)
    assert [str(s.path) for s in ok.slides] == [
        f"s3://{name}/wsi/cmu.svs",
        f"s3://{name}/wsi/sm.dcm",
    ]
    gone = r"row 2: slide s3://.*/wsi/gone\.svs does not exist; upload"
    with pytest.raises(SpecError, match=gone):
        load_spec(_spec(tmp_path, f"s3://{name}/wsi", ["cmu.svs", "gone.svs"]), settings)
    with pytest.raises(SpecError, match="row 1: slide path points outside the source"):
        load_spec(_spec(tmp_path, f"s3://{name}/wsi", ["../cmu.svs"]), settings)
    with pytest.raises(SpecError, match="row 2: duplicate slide"):
        load_spec(_spec(tmp_path, f"s3://{name}/wsi", ["cmu.svs", "./cmu.svs"]), settings)
    with pytest.raises(SpecError, match="cannot list source object s3://no-such-bucket-h4/wsi"):
        load_spec(_spec(tmp_path, "s3://no-such-bucket-h4/wsi", ["cmu.svs"]), settings)
