"""The burn-in check on pictures made here: (a) a real label pasted into the glass, (b) a case
number in pen over tissue, (c) a QR and a PDF417 barcode, (d) tissue only; and its findings
never carry the text they read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slidegate.burnin import NeedleIndex, check_image
from slidegate.burnin.check import FLAG_SCORE, pick_level, to_rgb
from slidegate.burnin.shapes import score_text, shape
from tests.burnin.pictures import (
    CASE_NUMBER,
    barcode,
    paste,
    pen_text,
    real_label,
    tissue,
)

H, W = 768, 1024


def _public(report: object) -> str:
    return json.dumps(report.model_dump(mode="json"))  # type: ignore[attr-defined]


def test_shapes_and_scores() -> None:
    none = NeedleIndex.of([])
    assert shape("HS12-15115") == "id-run" and shape("ELB0246-0402") == "id-run"
    assert shape("12/29/09") == "date" and shape("2017-02-07") == "date"
    assert shape("CMU-I") == "code" and shape("Doe, J") == "name"
    assert shape("I") == "short" and shape("Tissue") == "word"
    assert score_text("HS12-15115", 0.95, none).score >= FLAG_SCORE
    assert score_text("5", 0.99, none).score < FLAG_SCORE  # texture read as a digit
    assert score_text("the", 0.99, none).score < FLAG_SCORE
    # a needle hit is certain, with OCR's digit confusions folded (a handwritten "CMU-1")
    idx = NeedleIndex.of(["CMU-1-Small-Region", "S26-04417"])
    assert score_text("CMu-I", 0.3, idx).needle
    assert score_text("s26 O4417", 0.3, idx).score == 1.0
    assert not score_text("Small", 0.9, idx).needle  # a plain word inside a needle is not
    assert not score_text("HS12-15115", 0.9, idx).needle


def test_check_level_choice() -> None:
    assert pick_level([(4000, 5000), (2000, 2500), (1000, 1250), (500, 625)]) == 2
    assert pick_level([(800, 600), (400, 300)]) == 0  # all small: full resolution
    grey16 = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)[..., None]
    assert to_rgb(grey16).shape == (64, 64, 3) and to_rgb(grey16).dtype == np.uint8


def test_a_real_label_on_the_glass_is_found(real_slides: Path) -> None:
    img = tissue(H, W, 1)
    paste(img, real_label(real_slides), 0, 0)  # the NDPI macro's printed label, top left
    report = check_image(img, NeedleIndex.of([]))
    flagged = [f for f in report.findings if f.score >= FLAG_SCORE]
    assert report.flagged == len(flagged) >= 3
    assert all(f.kind == "text" and f.box[2] <= 420 for f in flagged)  # inside the label
    assert {"id-run"} <= {f.shape for f in flagged}
    assert "HS12" not in _public(report) and "15115" not in _public(report)


@pytest.mark.slow  # the per-slide stage test covers it in the default run
def test_pen_case_number_over_tissue_is_a_needle_hit() -> None:
    img = tissue(H, W, 2)
    pen_text(img, CASE_NUMBER, (300, 350), 56)
    report = check_image(img, NeedleIndex.of([CASE_NUMBER]))
    hits = [f for f in report.findings if f.needle]
    assert hits and hits[0].score == 1.0 and hits[0].shape == "needle"
    x0, y0, x1, y1 = hits[0].box
    assert x0 >= 280 and y0 >= 330 and x1 <= 800 and y1 <= 440
    assert CASE_NUMBER not in _public(report) and "04417" not in _public(report)
    # without the needle it is still flagged by its shape
    assert check_image(img, NeedleIndex.of([])).flagged >= 1


@pytest.mark.parametrize(
    ("kind", "scale"), [pytest.param("QRCode", 5, marks=pytest.mark.slow), ("PDF417", 3)]
)
def test_barcodes_on_the_glass_are_found(kind: str, scale: int) -> None:
    img = tissue(H, W, 3)
    paste(img, barcode(CASE_NUMBER, kind, scale), 40, W - 360)
    report = check_image(img, NeedleIndex.of([CASE_NUMBER]))
    codes = [f for f in report.findings if f.kind == "barcode"]
    assert [f.shape for f in codes] == [f"barcode:{kind}"] and codes[0].score == 1.0
    assert codes[0].box[0] >= W - 370
    assert CASE_NUMBER not in _public(report)


@pytest.mark.slow  # the per-slide stage test covers it in the default run
def test_tissue_alone_passes() -> None:
    report = check_image(tissue(H, W, 4), NeedleIndex.of([CASE_NUMBER]))
    assert report.flagged == 0
