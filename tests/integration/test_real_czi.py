"""The real Zeiss CZI mosaic (mosaic_test.czi) through the release flow, as its own cohort."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.releasing import release_folder

pytestmark = pytest.mark.integration

#: identifying values of the real file (SOURCES.md), as they stand in its bytes
KNOWN = [
    "Timm",
    "Tim-Most-complex",
    "2019-12-07T00:34:54.3773097Z",
    "2019-12-06T16:35:44.2293097-08:00",
    "2019-12-07T00:34:54",
    "2019-12-06T16:35:44",
    "mosaic_test",
]


def test_real_czi_release_has_no_identifying_value_and_matches_czifile(
    real_slides: Path, prefect_server: object, tmp_path: Path
) -> None:
    import czifile

    source = real_slides / "zeiss-czi"
    slide = source / "mosaic_test.czi"
    raw = slide.read_bytes()
    before = hashlib.sha256(raw).hexdigest()
    for value in KNOWN[:4]:
        assert value.encode() in raw  # the needles are real: they are in the source
    row = "mosaic_test.czi,CZIPATIENT,CZIBLOCK,CZISPEC,61,M,C50.9,breast,2019-12-07"
    result, release = release_folder(tmp_path, source, "czi-1", [row])
    assert result["published"] is True and result["counts"]["approved"] == 1
    files = [p for p in release.rglob("*") if p.is_file()]
    needles = [*KNOWN, "CZIPATIENT", "CZIBLOCK", "CZISPEC", "2019-12-07"]
    hits = [(p.name, n) for p in files for n in needles if n.encode() in p.read_bytes()]
    assert hits == []
    assert not any(n in str(p) for p in files for n in needles)
    (zpath,) = (release / "slides").iterdir()
    group = zarr.open_group(zpath, mode="r")
    assert sorted(group.array_keys()) == ["0"]  # no thumbnail or other attachment
    with czifile.CziFile(str(slide)) as czi:
        expected = czi.asarray(max_workers=1)  # czifile's own decode of the mosaic
    expected = expected.reshape(624, 1756)
    level0 = group["0"]
    assert level0.dtype == np.uint16 and level0.shape == (1, 624, 1756)
    np.testing.assert_array_equal(level0[0], expected)
    scale = group.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    assert scale[0]["scale"][1:] == pytest.approx([1.0833333, 1.0833333])
    assert hashlib.sha256(slide.read_bytes()).hexdigest() == before
