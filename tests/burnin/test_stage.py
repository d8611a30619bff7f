"""The burn-in check inside the per-slide stage: generic pyramidal TIFFs written here with
tifffile, (a) a real label pasted into a corner of the base level, (b) a case number in pen over
tissue, (c) a QR code on the glass, (d) tissue only. Under `quarantine` (a)-(c) are quarantined
with a structured reason and (d) passes; under `review` they go on, flagged for the steward,
with blurred previews in the work area; nothing they show reaches a log, report or output."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from slidegate.burnin.gate import needs_review, review_lines
from slidegate.models import SlideReport
from slidegate.settings import Settings
from slidegate.stages.context import ReleaseContext, prepare_release
from slidegate.stages.slide import process
from tests.burnin.pictures import (
    CASE_NUMBER,
    barcode,
    paste,
    pen_text,
    real_label,
    tissue,
    write_pyramid,
)

H, W = 1536, 2048  # base level; the check level is level 1 (768 x 1024)
PATIENT = "PT-77120459"  # the cohort's patient id: a needle of every slide


def _up(a: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(a).resize((a.shape[1] * 2, a.shape[0] * 2)))


def _cohort(root: Path, real_slides: Path, profile: str) -> Path:
    slides = root / "slides"
    a = tissue(H, W, 1)
    paste(a, _up(real_label(real_slides)), 0, 0)  # the label end of the glass, top left
    b = tissue(H, W, 2)
    pen_text(b, CASE_NUMBER, (700, 800), 110)
    c = tissue(H, W, 3)
    paste(c, barcode("S26-04417-A1", "QRCode", 10), 80, W - 520)
    d = tissue(H, W, 4)
    for name, img in (("a", a), ("b", b), ("c", c), ("d", d)):
        write_pyramid(slides / f"{name}.tiff", img)
    rows = ["slide,patient,block,specimen,age,sex,diagnosis,site,collection_date"]
    for i, name in enumerate("abcd"):
        rows.append(
            f"{name}.tiff,{PATIENT},{CASE_NUMBER}-B{i},SP-{i}-99812,61,F,C18.7,colon,2020-03-2{i}"
        )
    (root / "cohort.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = root / "release.yaml"
    spec.write_text(
        f"release: burn-{profile}\nsource: slides\ncohort: cohort.csv\nprofile: {profile}\n"
        f"target: {root / 'target'}\n",
        encoding="utf-8",
    )
    return spec


def _context(root: Path, real_slides: Path, profile: str) -> ReleaseContext:
    spec = _cohort(root, real_slides, profile)
    settings = Settings(
        work_dir=root / "work",
        registry_url=f"sqlite:///{root / 'reg.sqlite'}",
        slide_isolation="off",
    )
    return prepare_release(spec, settings)


def _run(ctx: ReleaseContext) -> dict[str, SlideReport]:
    return {Path(s.slide_id).stem: process(ctx, s) for s in ctx.slides}


@pytest.fixture(scope="module")
def quarantined(
    tmp_path_factory: pytest.TempPathFactory, real_slides: Path
) -> tuple[ReleaseContext, dict[str, SlideReport], list[str]]:
    root = tmp_path_factory.mktemp("burn-q")
    ctx = _context(root, real_slides, "open-access")
    assert ctx.policies.profile.burned_in == "quarantine"
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        reports = _run(ctx)
    finally:
        logging.getLogger().removeHandler(handler)
    return ctx, reports, records


def test_label_pen_and_barcode_quarantined_tissue_passes(
    quarantined: tuple[ReleaseContext, dict[str, SlideReport], list[str]],
) -> None:
    _, reports, _ = quarantined
    for name in "abc":
        r = reports[name]
        assert (r.status, r.stage) == ("quarantined", "burn-in"), (name, r.reason)
        assert r.reason is not None and r.reason.startswith("burned-in: ")
        assert r.burn_in is not None and r.burn_in.flagged >= 1 and r.burn_in.level == 1
        assert r.burn_in.shape == (H // 2, W // 2) and r.burn_in.action == "quarantine"
    d = reports["d"]
    assert d.status == "ok" and d.burn_in is not None and d.burn_in.flagged == 0
    assert d.detail["burn_in_findings"] == 0
    # where: the label top left, the pen text in the middle, the barcode top right
    a = [f for f in reports["a"].burn_in.findings if f.score >= 0.5]  # type: ignore[union-attr]
    assert all(f.box[0] < 420 and f.box[1] < 420 for f in a)
    b = [f for f in reports["b"].burn_in.findings if f.needle]  # type: ignore[union-attr]
    assert b and b[0].box[0] >= 330 and b[0].box[2] <= 800
    c = reports["c"].burn_in.findings  # type: ignore[union-attr]
    assert [f.shape for f in c if f.kind == "barcode"] == ["barcode:QRCode"]
    assert min(f.box[0] for f in c if f.kind == "barcode") >= W // 2 - 270
    assert "matching the slide's own values" in (reports["b"].reason or "")


def test_what_was_read_goes_nowhere(
    quarantined: tuple[ReleaseContext, dict[str, SlideReport], list[str]],
) -> None:
    ctx, reports, records = quarantined
    public = json.dumps([r.model_dump(mode="json") for r in reports.values()])
    public += "\n".join(records)
    work = "".join(
        p.read_text("utf-8", "replace") for p in ctx.work.rglob("*") if p.suffix == ".json"
    )
    for text in (CASE_NUMBER, "04417", "HS12", "15115", "ELB0246", "S26-04417-A1"):
        assert text not in public, text
        assert text not in work, text
    assert any("quarantined: burned-in" in m for m in records)


def test_review_flags_for_the_steward_with_blurred_previews(
    tmp_path: Path, real_slides: Path
) -> None:
    ctx = _context(tmp_path, real_slides, "controlled-access")
    assert ctx.policies.profile.burned_in == "review"
    slide = next(s for s in ctx.slides if Path(s.slide_id).stem == "b")
    report = process(ctx, slide)
    assert report.status == "ok" and report.burn_in is not None
    assert report.burn_in.action == "review" and report.burn_in.flagged >= 1
    assert needs_review([report]) == [report.pseudonym]
    previews = sorted((ctx.work / "burnin").glob(f"{report.pseudonym}-*.png"))
    assert previews and all(Image.open(p).size[0] > 0 for p in previews)
    table = "\n".join(review_lines([report]))
    assert report.pseudonym in table and "| text | needle |" in table
    assert CASE_NUMBER not in table
