"""Policy completeness: every PHI-bearing field that ../shared/reference/phi-locations.md lists for
a TIFF-family format has an explicit rule (exact name or a targeted pattern, never a catch-all
of the namespace) in that format's policy, and the rule never keeps the value.

Where the document lists names in backticks (Aperio keys, TIFF tags, Philips attributes, BIF
XMP attributes) they are read from the document, so a name added there fails here until the
policy has a rule. NDPI tags and OME-XML paths are written in prose: they are mapped by hand
below, and each mapping's source text must still be found in the document.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slidegate.deid.policy import DeidPolicy, load_deid_policy

PHI_DOC = Path(__file__).resolve().parents[3] / "shared" / "reference" / "phi-locations.md"
POLICIES = Path(__file__).resolve().parents[2] / "policies" / "deid"
#: namespace-wide patterns: a field only they match has no explicit rule
CATCH_ALL = {"ndpi.*", "ndpi.tag*", "qptiff.*", "ome*", "philips.*", "bif.*", "scn.*", "tiff.*",
             "tiff.tag*", "philips.DICOM_*", "philips.PIIM_*", "philips.PIM_*"}  # fmt: skip
TIFF_TAGS = {"DateTime", "Software", "Make", "Model", "Artist", "HostComputer", "DocumentName",
             "PageName", "Copyright", "XMP"}  # fmt: skip


@pytest.fixture(scope="module")
def doc() -> str:
    if not PHI_DOC.is_file():
        pytest.skip(f"phi-locations.md not found at {PHI_DOC}")
    return PHI_DOC.read_text(encoding="utf-8")


def section(doc: str, title: str) -> str:
    start = doc.index(title)
    nxt = doc.find("\n### ", start + 1)
    return doc[start : nxt if nxt > 0 else None]


def bullet(text: str, starts: str) -> str:
    for block in re.split(r"\n- ", text):
        if block.startswith(starts):
            return block
    raise AssertionError(f"no bullet starting {starts!r}")


def ticks(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def explicit_rule(policy: DeidPolicy, name: str) -> str | None:
    """The rule key deciding `name`, if it is explicit and does not keep the value."""
    found = policy.rule_for(name)
    if found is None or found[0] in CATCH_ALL or found[1].action == "keep":
        return None
    return found[0]


def missing(fmt: str, names: list[str]) -> list[str]:
    policy = load_deid_policy(POLICIES / f"{fmt}.yaml")
    return [n for n in names if explicit_rule(policy, n) is None]


def test_svs_keys_and_tags_from_the_document(doc: str) -> None:
    svs = section(doc, "### 4.2 Aperio SVS")
    keys = ticks(bullet(svs, "Identifying keys").split("Keep-list")[0])
    names = [f"aperio.{k.replace('.*', '.X')}" for k in keys]
    other = bullet(svs, "Other TIFF tags")
    tags = [t for t in ticks(other) if t in TIFF_TAGS] + (["XMP"] if "XMP (700)" in other else [])
    assert len(names) > 15 and sorted(tags) == sorted(TIFF_TAGS)
    for fmt in ("svs", "tiff", "ndpi", "qptiff", "ome-tiff", "philips", "bif", "scn"):
        assert missing(fmt, [f"tiff.{t}" for t in tags]) == [], fmt
    assert missing("svs", names) == []


def test_philips_and_bif_fields_from_the_document(doc: str) -> None:
    part = section(doc, "### 4.7 Philips and Ventana")
    philips = [t for t in ticks(bullet(part, "Philips TIFF")) if re.fullmatch(r"[A-Z_]{6,}", t)]
    philips = [t for t in philips if t not in ("LABELIMAGE", "MACROIMAGE")]  # image types
    bif = [t for t in ticks(bullet(part, "Ventana BIF")) if re.fullmatch(r"[A-Za-z0-9]+", t)]
    assert len(philips) == 8 and len(bif) >= 7
    assert missing("philips", [f"philips.{t}" for t in philips]) == []
    assert missing("philips", ["philips.PIM_DP_IMAGE_DATA"]) == []  # the embedded label/macro
    assert missing("bif", [f"bif.iScan@{t}" for t in bif if t != "700"]) == []


#: NDPI (4.3): document text -> field name(s)
NDPI = {
    "65427 Reference/SlideLabel": ["ndpi.SlideLabel"],
    "306 DateTime": ["tiff.DateTime"],
    "65442 ScannerSerialNumber": ["ndpi.ScannerSerialNumber"],
    "65449 Comments": [
        "ndpi.Comments",
        "ndpi.Comments.NDP.S/N",
        "ndpi.Comments.Anything",
        "ndpi.Comments.roi.barcode.macro",
        "ndpi.Comments.BarcodeNoR",
    ],
    "65428 AuthCode": ["ndpi.AuthCode"],
    "305 Software": ["tiff.Software"],
    "hamamatsu.Created`/`Updated": ["ndpi.Comments.Created", "ndpi.Comments.Updated"],
    "ImageDescription (when present)": ["tiff.ImageDescription"],
}
#: OME-TIFF (4.6): document text -> field name(s)
OME = {
    "Image/@Name": ["ome.Image@Name"],
    "AcquisitionDate": ["ome.Image.AcquisitionDate"],
    "UUID/@FileName": ["ome.Image.Pixels.TiffData.UUID@FileName"],
    "Experimenter": ["ome.Experimenter@FirstName", "ome.Experimenter@LastName",
                     "ome.Experimenter@UserName", "ome.Experimenter@Email"],
    "OriginalMetadata": ["ome.OriginalMetadata.Anything"],
    "Series 0 Filename": ["ome.OriginalMetadata.Series 0 Filename"],
    "Series 0 Date": ["ome.OriginalMetadata.Series 0 Date"],
    "Series 0 User": ["ome.OriginalMetadata.Series 0 User"],
    "Series 0 DSR ID": ["ome.OriginalMetadata.Series 0 DSR ID"],
    "Series 0 ImageID": ["ome.OriginalMetadata.Series 0 ImageID"],
    "Series 0 ScanScope ID": ["ome.OriginalMetadata.Series 0 ScanScope ID"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "title", "table"),
    [("ndpi", "### 4.3 Hamamatsu NDPI", NDPI), ("ome-tiff", "### 4.6 Generic TIFF", OME)],
)
def test_prose_fields_have_rules(doc: str, fmt: str, title: str, table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    text = section(doc, title)
    assert [k for k in table if k not in text] == []  # the mapping follows the document
    assert missing(fmt, [n for names in table.values() for n in names]) == []


def test_qptiff_scn_and_ndpi_barcode_have_rules() -> None:
    """Not in phi-locations.md: the identifying fields SOURCES.md lists for the real QPTIFF,
    the SCN XML identifiers (collection/image names, uuids, barcode, device, user) and the
    NDPI barcode tag 65468 the issue names."""
    assert missing("ndpi", ["ndpi.Barcode", "ndpi.BarcodeType"]) == []
    assert (
        missing(
            "qptiff",
            [
                "qptiff.SlideID",
                "qptiff.ComputerName",
                "qptiff.Identifier",
                "qptiff.Barcode",
                "qptiff.ScanProfile.root.Name",
                "qptiff.ValidationCode",
                "qptiff.Responsivity.Filter.Date",
            ],
        )
        == []
    )
    assert missing("scn", ["scn.collection@name", "scn.collection@uuid", "scn.collection.barcode",
                           "scn.collection.image@name", "scn.collection.image@uuid",
                           "scn.collection.image.device@model", "scn.collection.image.user",
                           "scn.collection.macro@name"]) == []  # fmt: skip
