"""Shared fixtures. Real scanner files live beside the repository in ../shared/data/real-slides."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_SLIDES = REPO.parent / "shared" / "data" / "real-slides"


@pytest.fixture(scope="session")
def real_slides() -> Path:
    if not REAL_SLIDES.is_dir():
        pytest.skip(f"real slide files not found at {REAL_SLIDES}")
    return REAL_SLIDES


@pytest.fixture(scope="session")
def policies_dir() -> Path:
    return REPO / "policies"
