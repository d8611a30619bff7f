"""`conversion.original_copy: true`: one release_cohort run (real Prefect server, Dask, SeaweedFS
S3) of a synthetic SVS, generic TIFF, DICOM folder and OME-TIFF, all with canaries. The SVS,
TIFF and DICOM slides are published with a de-identified copy in their own format next to the
OME-Zarr; the OME-TIFF (no copy writer) without one, and its report says so. Every published
byte is downloaded and searched for every canary; each downloaded copy is re-opened with
OpenSlide (no associated image) and compared tile by tile with its source; verify passes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import openslide
import pytest

from slidegate.audit.copy_check import check_copy
from slidegate.models import DeidPlan
from slidegate.publish.release import verify_release
from slidegate.publish.stores import open_store
from slidegate.settings import DEFAULT_POLICIES_DIR, Settings
from slidegate.synth.dicom import write_dicom_wsi
from slidegate.synth.label import render_label
from slidegate.synth.texture import tissue_image
from slidegate.synth.tiff import TiffMeta, write_generic_tiff
from slidegate.synth.vendors.ome_tiff import write_ome_tiff
from tests.formats.test_tiff_copy import write_canary_svs

pytestmark = pytest.mark.integration
RELEASE = "copy-1"
SUFFIX = {"svs": ".svs", "tiff": ".tiff", "dicom": ".dcm"}
VENDOR = {"svs": "aperio", "tiff": "generic-tiff", "dicom": "dicom"}


def _sources(root: Path) -> tuple[dict[str, Path], list[str]]:
    """slide id -> source path, and every planted value."""
    root.mkdir(parents=True, exist_ok=True)
    _, svs_canaries = write_canary_svs(root / "a.svs")
    tmeta = TiffMeta(
        description="CANARYtiffdesc7731", datetime="2022:02:03 04:05:06",
        software="CANARYtiffsoft7732", artist="CANARYtiffartist7733",
        host_computer="CANARYtiffhost7734", document_name="CANARYtiffdoc7735",
    )  # fmt: skip
    label = render_label(["CANARYtifflabel7736"])
    write_generic_tiff(root / "b.tiff", tissue_image(8, (1024, 1024)), tmeta, label)
    dicom = write_dicom_wsi(root / "c", seed=41)
    ome = write_ome_tiff(root / "d.ome.tif", seed=42)
    canaries = [*svs_canaries, tmeta.description, tmeta.datetime, tmeta.software, tmeta.artist,
                tmeta.host_computer, tmeta.document_name, "CANARYtifflabel7736",
                *dicom.canaries.values(), *ome.canaries.values()]  # fmt: skip
    canaries += [p for c in dicom.canaries.values() if "^" in c for p in c.split("^")]
    paths = {"a.svs": root / "a.svs", "b.tiff": root / "b.tiff", "c": dicom.path,
             "d.ome.tif": ome.path}  # fmt: skip
    return paths, canaries


def test_release_publishes_clean_original_format_copies(
    prefect_server: object, s3_service, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from flows.release import dask_runner, release_cohort

    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, policies)
    profile = policies / "profiles" / "restricted.yaml"
    text = profile.read_text()
    assert "original_copy: false" in text  # documented in every profile
    profile.write_text(text.replace("original_copy: false", "original_copy: true"))
    sources, canaries = _sources(tmp_path / "slides")
    (tmp_path / "canaries.json").write_text(
        json.dumps({"canaries": [{"field": f"c{i}", "value": v} for i, v in enumerate(canaries)]})
    )
    (tmp_path / "cohort.csv").write_text(
        "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date\n"
        + "".join(
            f"{name},CPYPAT{i},CPYBLK{i},CPYSPC{i},{40 + i},F,C18.7,colon,2021-01-0{i + 1}\n"
            for i, name in enumerate(sources)
        )
    )
    s3 = s3_service.client()
    s3.create_bucket(Bucket="copies")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"release: {RELEASE}\nsource: slides\ncohort: cohort.csv\nprofile: restricted\n"
        "target: s3://copies/wsi\ncanaries: canaries.json\n"
    )
    os.environ["AWS_ACCESS_KEY_ID"] = s3_service.access_key  # inherited by the Dask workers
    os.environ["AWS_SECRET_ACCESS_KEY"] = s3_service.secret_key
    settings = Settings(
        work_dir=tmp_path / "work",
        policies_dir=policies,
        s3_endpoint_url=s3_service.endpoint_url,
        n_workers=1,
    )
    result = release_cohort.with_options(task_runner=dask_runner(settings))(
        spec=str(spec), settings=settings
    )
    assert result["published"] is True and result["counts"]["approved"] == 4

    out = tmp_path / "download"  # the receiver: every published object
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="copies", Prefix=f"wsi/{RELEASE}/"
    ):
        for obj in page.get("Contents", []):
            dest = out / obj["Key"].removeprefix(f"wsi/{RELEASE}/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file("copies", obj["Key"], str(dest))
    files = [p for p in out.rglob("*") if p.is_file()]
    hits = sorted(
        {
            (p.name, v[:8])
            for p in files
            for v in canaries
            if v.lower().encode() in p.read_bytes().lower()
            or v.encode("utf-16-le") in p.read_bytes()
        }
    )
    assert hits == []

    reports = {r["slide"]: r for r in json.loads((out / "reports" / "slides.json").read_text())}
    manifest = json.loads((out / "manifest.json").read_text())
    entries = {e["slide"]: e for e in manifest["info"]["slides"]}
    work = settings.work_dir.resolve() / "releases" / RELEASE
    formats = {}
    for pseudonym, report in reports.items():
        fmt = report["format"]
        formats[fmt] = pseudonym
        if fmt not in SUFFIX:  # OME-TIFF: released without a copy, and the report says so
            assert report["counts"]["original_copy_unsupported"] == 1
            assert "copy" not in entries[pseudonym]
            assert not any(p.name.startswith(pseudonym + ".") and "zarr" not in p.name
                           for p in (out / "slides").iterdir())  # fmt: skip
            continue
        key = f"slides/{pseudonym}{SUFFIX[fmt]}"
        assert entries[pseudonym]["copy"] == key
        assert report["counts"]["original_copy_bytes"] > 0
        copy = out / key
        plan = DeidPlan.model_validate_json((work / "plans" / f"{pseudonym}.json").read_text())
        source = sources[plan.slide_id]
        assert check_copy(copy, plan, source) == []  # the published bytes, tile by tile
        first = sorted(copy.glob("*.dcm"))[0] if copy.is_dir() else copy
        with openslide.OpenSlide(str(first)) as slide:
            assert slide.properties["openslide.vendor"] == VENDOR[fmt]
            assert dict(slide.associated_images) == {}
            assert slide.level_count == len(plan.levels)
    assert sorted(formats) == ["dicom", "ome-tiff", "svs", "tiff"]
    assert verify_release(open_store("s3://copies/wsi", settings), RELEASE) == []
