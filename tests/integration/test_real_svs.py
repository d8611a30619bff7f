"""The real CMU-1-Small-Region.svs through the same flow, as its own cohort."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import zarr

from tests.releasing import release_folder

pytestmark = pytest.mark.integration

#: identifying values of the real file (SOURCES.md), its file name included; the User GUID
#: is read from the file itself
KNOWN = ["CPAPERIOCS", "CMU-1", "12/29/09", "09:59:15", "1004486"]


def test_real_svs_release_has_no_identifying_value_and_no_label(
    real_slides: Path, prefect_server: object, tmp_path: Path
) -> None:
    from slidegate.formats import read_facts

    source = real_slides / "aperio-svs"
    slide = source / "CMU-1-Small-Region.svs"
    before = hashlib.sha256(slide.read_bytes()).hexdigest()
    user = next(f.value for f in read_facts(slide, slide.name).fields if f.name == "aperio.User")
    row = "CMU-1-Small-Region.svs,CMU1PATIENT,CMU1BLOCK,CMU1SPEC,57,F,C18.7,colon,2009-12-29"
    # an existing scheduler, as `--dask-address` uses it (the flow must not start its own)
    result, release = release_folder(tmp_path, source, "cmu-1", [row])
    assert result["published"] is True and result["counts"]["approved"] == 1
    files = [p for p in release.rglob("*") if p.is_file()]
    needles = [*KNOWN, user, "CMU1PATIENT", "CMU1BLOCK", "CMU1SPEC", "2009-12-29"]
    hits = [(p.name, n) for p in files for n in needles if n.encode() in p.read_bytes()]
    assert hits == []
    (zpath,) = (release / "slides").iterdir()
    group = zarr.open_group(zpath, mode="r")
    assert sorted(group.array_keys()) == ["0"]  # the one pyramid level; no label, macro, thumb
    assert group["0"].shape == (3, 2967, 2220)
    assert hashlib.sha256(slide.read_bytes()).hexdigest() == before
