"""The steward's tools read slides under the same bound as a release: `inspect` and the
standalone `risk --slides` read each file in the reused child process, a read past the bound
is stopped with the bound's error, and the risk tool's log names the slide by pseudonym (the
cohort path is a source file name)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from slidegate.bounded import Bound
from slidegate.errors import SlideLimitError
from slidegate.formats import read_facts
from slidegate.inspect import inspect_slide
from slidegate.profile import load_policies
from slidegate.risk.standalone import run_standalone
from tests.releasing import COHORT_HEADER

# no child answers within a millisecond: the bound is what stops the read
TOO_SHORT = Bound(seconds=0.001, memory_mb=2048)
NAME = "Roe_Jane_1970-01-01.tiff"  # a source file name that is itself identifying


def test_inspect_reads_in_the_bounded_child(real_slides: Path, policies_dir: Path) -> None:
    path = real_slides / "generic-tiff/boxes.tiff"
    policies = load_policies(policies_dir, "restricted")
    with pytest.raises(SlideLimitError, match="longer than the bound") as stopped:
        inspect_slide(path, policies, TOO_SHORT)
    assert "boxes" not in str(stopped.value)  # the file name is not in the error
    view = inspect_slide(path, policies, Bound(seconds=120, memory_mb=2048))
    assert view.levels == read_facts(path, path.name).levels


def test_standalone_risk_reads_in_the_bounded_child_and_logs_pseudonyms(
    real_slides: Path, policies_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    slides = tmp_path / "slides"
    slides.mkdir()
    (slides / NAME).write_bytes((real_slides / "generic-tiff/boxes.tiff").read_bytes())
    cohort = tmp_path / "cohort.csv"
    cohort.write_text(COHORT_HEADER + f"{NAME},P1,B1,S1,51,F,C50.9,breast,2020-01-01\n")
    kwargs = {"profile": "restricted", "slides_dir": slides}
    with caplog.at_level(logging.WARNING, logger="slidegate.risk"):
        stopped = run_standalone(cohort, policies_dir, bound=TOO_SHORT, **kwargs)  # type: ignore[arg-type]
    assert len(stopped.skipped) == 1 and stopped.skipped[0].startswith("s-")
    assert "limit: time bound exceeded" in caplog.text
    assert "Roe" not in caplog.text and "1970" not in caplog.text
    read = run_standalone(cohort, policies_dir, bound=Bound(120, 2048), **kwargs)  # type: ignore[arg-type]
    assert read.skipped == () and len(read.taxonomy) == 1
