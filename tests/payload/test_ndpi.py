"""NDPI: the tiles tifffile shows are fragments of one JPEG stream per page, decoded with the
page's JPEG header, and that header carries a COM (the scanner's text). Such pages are never
passed through (the header would sit in zarr.json): they are decoded and re-encoded, so no
byte of the header, and nothing hidden anywhere else in the stream, is published. Crafted
from the real file by raw bytes, no slidegate.synth."""

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
from tests.payload import slides

NDPI = "hamamatsu-ndpi/test3-DAPI-2-387.ndpi"


def _com_text(header: bytes) -> str:
    at = header.find(b"\xff\xfe")
    assert at > 0
    n = int.from_bytes(header[at + 2 : at + 4], "big")
    return header[at + 4 : at + 2 + n].split(b"\x00")[0].decode("ascii")


def test_crafted_ndpi_hiding_places_are_never_published(
    real_slides: Path, policies_dir: Path, tmp_path: Path
) -> None:
    """The real NDPI rewritten by raw bytes (tests/payload/slides.ndpi_hidden): EXIF and a
    COM before the scan, a COM and an APP9 after it, text after EOI, in levels 0 and 1.
    tifffile decodes it like the original; slidegate converts it with every level equal to
    that decode and no secret in any output byte or key. The header's own COM (the scanner's
    text, real) is never published either: such pages are re-encoded, not passed through."""
    source = tmp_path / "crafted.ndpi"
    words = slides.ndpi_hidden(real_slides / NDPI, source, "CANARYNDPI")
    raw = source.read_bytes()
    assert all(w.encode() in raw for w in words)
    with tifffile.TiffFile(real_slides / NDPI) as tif:
        page = tif.pages[0]
        assert isinstance(page, tifffile.TiffPage) and page.jpegheader is not None
        text = _com_text(page.jpegheader)
    assert len(text) > 12 and text.encode() in raw
    facts = read_facts(source, source.name)
    plan = plan_deid(facts, load_deid_policy(policies_dir / "deid/ndpi.yaml"), "s-00000000000000ae")
    out = tmp_path / "n.ome.zarr"
    write_ome_zarr(source, plan, out, ConvertOptions())  # the default mode: pass-through
    for i in range(len(plan.levels)):
        meta = json.loads((out / str(i) / "zarr.json").read_text())
        names = [c["name"] for c in meta["codecs"][0]["configuration"]["codecs"]]
        assert "jpeg" not in names, i  # re-encoded, not copied
    needles = {w: w for w in words} | {"com": text, "com-start": text[:12]}
    assert find_leaks(out, needles) == []
    group = zarr.open_group(str(out), mode="r")
    with tifffile.TiffFile(real_slides / NDPI) as tif:
        for i in range(len(plan.levels)):
            want = tif.series[0].levels[i].asarray()
            got = np.asarray(group[str(i)][:]).transpose(1, 2, 0)
            np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg=f"level {i}")
