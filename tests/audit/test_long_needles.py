"""A very long dropped value (an XML document, a long free text) stays searchable and cheap."""

from __future__ import annotations

from pathlib import Path

from slidegate.audit import phi_needles, scan_tree
from slidegate.audit.needles import MAX_NEEDLE_CHARS
from slidegate.models import DeidPlan, MetadataField, SlideFacts

LONG = "<OME><Experimenter FirstName='Jane' LastName='Roe-Canary'/>" + "x" * 200_000 + "</OME>"


def _facts(facts: SlideFacts) -> SlideFacts:
    extra = MetadataField(name="ome.XML", value=LONG, location="page 0")
    return facts.model_copy(update={"fields": (*facts.fields, extra)})


def test_long_value_is_capped_and_still_found(
    facts: SlideFacts, plan: DeidPlan, tmp_path: Path
) -> None:
    needles = phi_needles(_facts(facts), plan).needles
    assert needles["ome.XML"] == LONG[:MAX_NEEDLE_CHARS].encode()
    leak = tmp_path / "out"
    leak.mkdir()
    (leak / "zarr.json").write_text('{"attributes": {"note": "' + LONG + '"}}', "utf-8")
    (leak / "clean.bin").write_bytes(b"x" * 300_000)
    findings = scan_tree(leak, needles)
    assert {f.field for f in findings} == {"ome.XML"}
    assert {f.file for f in findings} == {"zarr.json"}
