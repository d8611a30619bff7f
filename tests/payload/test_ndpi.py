"""NDPI: the tiles tifffile shows are fragments of one JPEG stream per page, decoded with the
page's JPEG header, and that header carries a COM (the scanner's text). Such pages are never
passed through (the header would sit in zarr.json): they are decoded and re-encoded, so no
byte of the header is published. Real file, no slidegate.synth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile
import zarr

from slidegate.convert import ConvertOptions, write_ome_zarr
from slidegate.deid import load_deid_policy, plan_deid
from slidegate.formats import read_facts
from tests.leaksearch import find_leaks

NDPI = "hamamatsu-ndpi/test3-DAPI-2-387.ndpi"


def _com_text(header: bytes) -> str:
    at = header.find(b"\xff\xfe")
    assert at > 0
    n = int.from_bytes(header[at + 2 : at + 4], "big")
    return header[at + 4 : at + 2 + n].split(b"\x00")[0].decode("ascii")


def test_ndpi_header_comment_is_never_published(
    real_slides: Path, policies_dir: Path, tmp_path: Path
) -> None:
    source = real_slides / NDPI
    with tifffile.TiffFile(source) as tif:
        page = tif.pages[0]
        assert isinstance(page, tifffile.TiffPage) and page.jpegheader is not None
        text = _com_text(page.jpegheader)
    assert len(text) > 12
    facts = read_facts(source, source.name)
    plan = plan_deid(facts, load_deid_policy(policies_dir / "deid/ndpi.yaml"), "s-00000000000000ad")
    out = tmp_path / "n.ome.zarr"
    write_ome_zarr(source, plan, out, ConvertOptions())  # the default mode: pass-through
    for i in range(len(plan.levels)):
        meta = json.loads((out / str(i) / "zarr.json").read_text())
        names = [c["name"] for c in meta["codecs"][0]["configuration"]["codecs"]]
        assert "numcodecs.imagecodecs_jpeg" not in names, i  # re-encoded, not copied
    assert find_leaks(out, {"com": text, "com-start": text[:12]}) == []
    got = np.asarray(zarr.open_group(str(out), mode="r")["0"][:]).transpose(1, 2, 0)
    with tifffile.TiffFile(source) as tif:
        want = tif.series[0].levels[0].asarray()
    np.testing.assert_array_equal(got.reshape(want.shape), want)
