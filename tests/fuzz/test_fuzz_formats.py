"""Fuzz: seeded damaged copies of every shared real slide through inventory, the region reader
and (a few of them) the conversion. Only project errors may come out, no variant may run past
the time bound, and no byte of a source changes (the variants are written read-only and hashed
before and after; the shared real files are hashed too)."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import pytest

from tests.fuzz.harness import SLIDES, exercise, place, remove, tree_sha256, victim_bytes
from tests.fuzz.mutate import variant

#: seconds one variant may take (inventory + read; a conversion gets CONVERT_BOUND)
BOUND = 10.0
CONVERT_BOUND = 60.0
#: (variants, conversions) per slide: the default run stays near a minute in all
DEFAULT = {
    "zeiss-czi/mosaic_test.czi": (60, 1),
    "dicom-wsi/cmu-1-small-region-wsi2dcm": (60, 1),
    "hamamatsu-ndpi/test3-DAPI-2-387.ndpi": (120, 1),
}
DEFAULT_OTHERS = (200, 2)
SLOW = (1500, 40)

#: pydicom and czifile warn about every oddity of a damaged file; the outcome is what counts
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def fuzz(real_slides: Path, name: str, tmp: Path, count: int, converts: int) -> None:
    source = real_slides / name
    if not source.exists():
        pytest.skip(f"{name} is not in the shared real slides")
    before = tree_sha256(source)
    seed = zlib.crc32(name.encode())
    foreign: list[str] = []
    slow: list[str] = []
    outcomes: dict[str, int] = {}
    converted = 0
    for index in range(count):
        kind, data = variant(victim_bytes(source, index), index, seed)
        path = place(source, data, index, tmp)
        hashed = tree_sha256(path)
        do_convert = converted < converts and index % max(1, count // (converts * 4)) == 0
        started = time.monotonic()
        outcome = exercise(path, tmp / "out.ome.zarr" if do_convert else None)
        took = time.monotonic() - started
        if outcome.stage == "convert" or (do_convert and outcome.stage == "done"):
            converted += 1
        if outcome.foreign:
            foreign.append(f"{kind} at {outcome.stage}: {outcome.foreign}")
        if took > (CONVERT_BOUND if do_convert else BOUND):
            slow.append(f"{kind}: {took:.1f} s")
        assert tree_sha256(path) == hashed, f"{kind} changed the bytes of its source"
        key = f"{outcome.stage}:{outcome.error}"
        outcomes[key] = outcomes.get(key, 0) + 1
        remove(path)
    print(name, outcomes, f"converted={converted}")
    assert foreign == []
    assert slow == []
    assert tree_sha256(source) == before
    # the mutations reach past the first check: some variants read cleanly, some fail later
    assert any(k.startswith("done") for k in outcomes) or name.endswith("label_test_wsi.dcm")
    assert sum(v for k, v in outcomes.items() if not k.endswith(":None")) > count // 10


@pytest.mark.parametrize("name", SLIDES)
def test_damaged_real_slides_raise_only_project_errors(
    real_slides: Path, name: str, tmp_path: Path
) -> None:
    count, converts = DEFAULT.get(name, DEFAULT_OTHERS)
    fuzz(real_slides, name, tmp_path, count, converts)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLIDES)
def test_damaged_real_slides_many_variants(real_slides: Path, name: str, tmp_path: Path) -> None:
    fuzz(real_slides, name, tmp_path, *SLOW)
