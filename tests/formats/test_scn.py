"""Leica SCN (no real file is public and small enough): a synthetic SCN400 file, macro image
(the one covering the whole collection) dropped, canaries in every XML field, released clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidegate.synth.vendors.scn import write_scn
from tests.formats._vendor import assert_clean_release


def test_synthetic_scn_released_clean(tmp_path: Path) -> None:
    slide = write_scn(tmp_path / "slide.scn", seed=10)
    r = assert_clean_release(slide, tmp_path / "out")
    assert [lv.page for lv in r.facts.levels] == [2, 3, 4]
    assert {(a.kind, a.page) for a in r.plan.dropped_images} == {("macro", 0), ("macro", 1)}
    assert r.facts.mpp_x == pytest.approx(0.25)
    attrs = r.plan.attributes
    assert attrs.get("scan_year") == "2012"
    # the slide's objective, not the macro camera's
    assert attrs.get("scn.collection.image.scanSettings.objectiveSettings.objective") == "20"


def test_synthetic_fluorescence_scn_channels_as_c(tmp_path: Path) -> None:
    """One page per channel and resolution (SCN fluorescence): channels released as c, each
    compared with tifffile's decode of its page by the audit."""
    slide = write_scn(tmp_path / "fluo.scn", seed=12, channels=3)
    r = assert_clean_release(slide, tmp_path / "out")
    assert [(lv.samples, lv.page) for lv in r.facts.levels] == [(3, 2), (3, 5), (3, 8)]
