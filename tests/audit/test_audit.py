from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from slidegate.audit import audit_output, phi_needles, scan_tree, verify_output
from slidegate.audit.scan import Scanner
from slidegate.models import DeidPlan, Finding, SlideFacts

CANARY = ("canary.label", "CANARY-7f3a9c1e-label-text")


# --- needles -----------------------------------------------------------------------------


def test_needles_cover_dropped_and_coarsened_values(facts: SlideFacts, plan: DeidPlan) -> None:
    result = phi_needles(facts, plan, [CANARY])
    n = result.needles
    assert n["aperio.Filename"] == b"PAT-Smith-2031"
    assert n["aperio.Date"] == b"12/29/09"
    assert n["aperio.ImageID"] == b"1004486"
    assert n["aperio.Scan date"] == b"2009-12-29 09:59:15"  # coarsened: the source value
    assert n["aperio.Scan date[date]"] == b"2009-12-29"
    assert n["tiff.ImageDescription[date]"] == b"12/29/09"
    assert n["tiff.ImageDescription"].startswith(b"Aperio Image Library")
    assert n["philips.Unplanned"] == b"Unplanned Value 77"  # not planned = dropped
    assert n["canary.label"] == CANARY[1].encode()
    # kept values are not needles; short, numeric and legitimately-present ones are counted
    assert b"20" not in n.values()
    assert "aperio.Model" not in n and "aperio.ScanScope ID" not in n
    assert result.skipped == {"aperio.Left": 1, "aperio.ScanScope ID": 1}
    assert len(result) == len(n)


# --- raw byte scan -----------------------------------------------------------------------


def _plant_in_chunk(out: Path, value: bytes, offset: int) -> str:
    """Write `value` into the raw bytes of chunk (0,0,0) of level 0 at `offset`."""
    arr = zarr.open_array(str(out / "0"), mode="r+")
    region = np.asarray(arr[:, 0:256, 0:256]).copy()
    flat = region.reshape(-1)
    flat[offset : offset + len(value)] = np.frombuffer(value, dtype=np.uint8)
    arr[:, 0:256, 0:256] = region
    return "0/c/0/0/0"


def test_scan_finds_every_plant(
    clean_output: Path, copy_of, facts: SlideFacts, plan: DeidPlan
) -> None:
    out = copy_of(clean_output)
    needles = phi_needles(facts, plan, [CANARY]).needles
    block = 4096
    # 1. inside a chunk, well inside a block; 2. straddling the 4096-byte block border
    chunk = _plant_in_chunk(out, b"PAT-Smith-2031", 1000)
    _plant_in_chunk(out, b"b414003d-95c6-48b0-9369-8010ed517ba7", block - 10)
    assert (out / chunk).stat().st_size == 3 * 256 * 256  # uncompressed: plants stay raw
    # 3. in zarr.json (JSON-escaped by zarr, searched case-insensitively)
    group = zarr.open_group(str(out), mode="r+")
    group.attrs["note"] = "scanned 12/29/09 by DR JANE ROE"
    # 4. in an extra file, lower-cased; 5. UTF-16LE in a binary file; 6. in a file name
    (out / "extra").mkdir()
    (out / "extra" / "notes.txt").write_text("canary-7f3a9c1e-label-text\n")
    (out / "extra" / "blob.bin").write_bytes(b"\x00\x01" + "Unplanned Value 77".encode("utf-16-le"))
    (out / "extra" / "PAT-Smith-2031.png").write_bytes(b"\x89PNG")

    findings = set(scan_tree(out, needles, block_size=block))
    expected = {
        Finding(field="aperio.Filename", file=chunk),
        Finding(field="aperio.User", file=chunk),
        Finding(field="aperio.Date", file="zarr.json"),
        Finding(field="tiff.ImageDescription[date]", file="zarr.json"),
        Finding(field="canary.label", file="extra/notes.txt"),
        Finding(field="philips.Unplanned", file="extra/blob.bin"),
        Finding(field="aperio.Filename", file="extra/[REDACTED].png"),
    }
    assert expected <= findings, expected - findings
    assert findings - expected == set()
    # no finding carries a value
    for f in findings:
        assert "Smith" not in f.file and "Smith" not in f.field


def test_block_border_hit_needs_the_overlap(tmp_path: Path) -> None:
    value = b"NEEDLE-across-the-border"
    for offset in range(100 - len(value), 101):  # every split position around the border
        data = bytearray(b"x" * 300)
        data[offset : offset + len(value)] = value
        (tmp_path / "f.bin").write_bytes(bytes(data))
        assert scan_tree(tmp_path, {"v": value}, block_size=100) == (
            Finding(field="v", file="f.bin"),
        )


def test_overlapping_and_nested_needles_all_reported() -> None:
    s = Scanner({"name": b"John Smith", "first": b"John", "site": b"Smith Hospital"})
    (m,) = s.matchers
    assert m.find(b"..John Smith Hospital..") == {"name", "first", "site"}
    assert m.find(b"JOHN SMITH") == {"name", "first"}  # any case, binary files too
    assert m.find(b'"john smith"') == {"name", "first"}


def test_clean_tree_has_no_findings(clean_output: Path, facts: SlideFacts, plan: DeidPlan) -> None:
    needles = phi_needles(facts, plan, [CANARY]).needles
    assert scan_tree(clean_output, needles, block_size=4096) == ()
    # the kept attributes are really there, so the skip rules matter
    attrs = json.loads((clean_output / "zarr.json").read_text())["attributes"]
    assert attrs["slidegate"]["Model"] == "Aperio AT2 Scanner"


# --- independent re-open -----------------------------------------------------------------


def test_verify_output_accepts_faithful_copy(
    clean_output: Path, plan: DeidPlan, source_tiff: Path
) -> None:
    assert verify_output(clean_output, plan, source_tiff) == []


def test_verify_output_reports_pixel_difference(
    clean_output: Path, copy_of, plan: DeidPlan, source_tiff: Path
) -> None:
    out = copy_of(clean_output)
    arr = zarr.open_array(str(out / "1"), mode="r+")
    arr[1, 299, 399] = (int(np.asarray(arr[1, 299, 399])) + 3) % 256
    problems = verify_output(out, plan, source_tiff)
    assert len(problems) == 1 and problems[0].startswith("level 1: pixels differ")
    assert verify_output(out, plan, source_tiff, tolerance=3) == []


def test_verify_output_reports_structure(
    clean_output: Path, copy_of, plan: DeidPlan, source_tiff: Path
) -> None:
    out = copy_of(clean_output)
    group = zarr.open_group(str(out), mode="r+")
    group.create_group("labels")
    group.create_array("macro", shape=(3, 10, 10), dtype="uint8")
    ome: dict[str, Any] = json.loads(json.dumps(group.attrs["ome"]))
    ms = [dict(ome["multiscales"][0])]
    ds = [dict(d) for d in ms[0]["datasets"]]
    ds[1]["coordinateTransformations"] = [{"type": "scale", "scale": [1.0, 0.25, 0.25]}]
    ms[0]["datasets"] = ds
    group.attrs["ome"] = {**ome, "multiscales": ms}
    problems = verify_output(out, plan, source_tiff)
    text = "\n".join(problems)
    assert "1 unexpected sub-group" in text
    assert "1 unexpected array" in text
    assert "level 1: y scale differs" in text and "level 1: x scale differs" in text
    assert "level 0" not in text


def test_verify_output_reports_shape_and_version(
    tmp_path: Path, plan: DeidPlan, source_tiff: Path, ngff_writer
) -> None:
    short = plan.model_copy(update={"levels": plan.levels[:1]})
    write_ngff = ngff_writer
    write_ngff(tmp_path / "a.zarr", plan)
    problems = verify_output(tmp_path / "a.zarr", short, source_tiff)
    assert any("multiscales datasets" in p for p in problems)
    assert any("unexpected array" in p for p in problems)
    assert verify_output(tmp_path / "missing.zarr", plan, source_tiff) == [
        "output is not a readable Zarr group"
    ]
    zarr.create_group(store=str(tmp_path / "b.zarr"), zarr_format=3, attributes={"x": 1})
    assert verify_output(tmp_path / "b.zarr", plan, source_tiff) == [
        "group attributes have no 'ome' object (NGFF 0.5)"
    ]


# --- combined ----------------------------------------------------------------------------


def test_audit_output_clean_and_leaky(
    clean_output: Path, copy_of, facts: SlideFacts, plan: DeidPlan
) -> None:
    good = audit_output(clean_output, facts, plan, [CANARY])
    assert good.ok and good.findings == () and good.problems == () and good.pixels_checked
    assert good.needles >= 9 and good.skipped_total == 2

    out = copy_of(clean_output)
    _plant_in_chunk(out, CANARY[1].encode(), 5000)
    bad = audit_output(out, facts, plan, [CANARY])
    assert not bad.ok
    assert bad.findings == (Finding(field="canary.label", file="0/c/0/0/0"),)
    assert len(bad.problems) == 1 and bad.problems[0].startswith("level 0: pixels differ")
