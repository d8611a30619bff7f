"""Slide admission with the shared needles cached per process: each slide's own source folder
and file names are still searched (they are the task's, not the first slide's)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from slidegate.models import DeidPlan, SlideFacts, SlideReport
from slidegate.settings import Settings
from slidegate.stages.context import ReleaseContext, prepare_release
from slidegate.stages.gate import admit_slide
from slidegate.synth import generate_cohort


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> ReleaseContext:
    from flows.cli import write_spec

    root = tmp_path_factory.mktemp("names")
    cohort = generate_cohort(root / "c", slides=4, patients=2, seed=4, base_size=(256, 256))
    spec = write_spec(cohort.root, release="names-1", target=str(root / "target"))
    settings = Settings(work_dir=root / "work", registry_url=f"sqlite:///{root / 'reg.sqlite'}")
    return prepare_release(spec, settings)


def _admit(ctx: ReleaseContext, i: int, text: str, tmp_path: Path) -> SlideReport:
    slide = ctx.slides[i]
    pseudonym = ctx.pseudonyms[slide.slide_id]
    one = replace(ctx, slides=(slide,), pseudonyms={slide.slide_id: pseudonym})  # as a task
    out = tmp_path / f"{pseudonym}.ome.zarr"
    (out / "0" / "c").mkdir(parents=True)
    (out / "zarr.json").write_text(json.dumps({"attributes": {"note": text}}))
    (out / "0" / "c" / "0").write_bytes(bytes(range(256)) * 4)
    facts = SlideFacts.model_validate(
        {"slide_id": slide.slide_id, "source_path": str(slide.path), "format": "svs",
         "size": 1, "sha256": "0", "mpp_x": None, "mpp_y": None, "levels": [],
         "associated": [], "fields": []}
    )  # fmt: skip
    plan = DeidPlan.model_validate(
        {"slide_id": slide.slide_id, "pseudonym": pseudonym, "format": "svs", "fields": [],
         "levels": [], "dropped_images": [], "mpp_x": None, "mpp_y": None}
    )  # fmt: skip
    report = SlideReport(slide_id=slide.slide_id, pseudonym=pseudonym, stage="audit",
                         status="ok", output_path=str(out))  # fmt: skip
    return admit_slide(one, report, facts, plan)


def test_each_slide_s_own_file_name_is_searched(ctx: ReleaseContext, tmp_path: Path) -> None:
    first = _admit(ctx, 0, "nothing to see", tmp_path / "a")
    assert first.status == "ok" and first.admitted  # the shared needles are now cached
    stem = Path(ctx.slides[1].slide_id).stem  # e.g. S0002: the second slide's source file
    second = _admit(ctx, 1, f"scanned as {stem} at the lab", tmp_path / "b")
    assert second.status == "quarantined", second
    assert second.reason is not None and "source" in second.reason
    assert stem not in (second.reason or "")
    third = _admit(ctx, 2, "clean as well", tmp_path / "c")
    assert third.status == "ok"
