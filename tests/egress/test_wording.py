"""Reports name fields by rule id and structural location, never by source name (item 3)."""

from __future__ import annotations

from slidegate.egress.wording import FieldIds, safe_location
from slidegate.models import DeidPlan, LevelFacts, PlannedField

LEVEL = LevelFacts(
    index=0, page=0, height=512, width=768, samples=3, dtype="uint8",
    tile_height=256, tile_width=256, compression="JPEG", downsample=1.0,
)  # fmt: skip
SECRET_KEY = "Jane Roe 1970-01-01"


def test_locations_keep_structure_only() -> None:
    assert safe_location("page 0 tag 270 ImageDescription") == "page 0 tag 270"
    assert safe_location("instance 2 (PatientName (0010,0010))") == "instance 2 (0010,0010)"
    assert safe_location(f"Slidedat.ini [{SECRET_KEY}] SLIDE_NAME") == "field"
    assert safe_location("Slidedat.ini [GENERAL] 123456") == "field"  # a number alone: no
    assert safe_location("Jane_Roe.dat byte 1200") == "byte 1200"
    assert safe_location("Metadata/Information/Document/Name") == "field"


def test_labels_become_rule_ids() -> None:
    plan = DeidPlan(
        slide_id="x.svs", pseudonym="s-0123456789abcdef", format="svs", levels=(LEVEL,),
        dropped_images=(), mpp_x=0.25, mpp_y=0.25,
        fields=(
            PlannedField(name=f"aperio.{SECRET_KEY}", location="page 0 tag 270 ImageDescription",
                         field_class="unknown", action="drop", rule="default-deny"),
            PlannedField(name="aperio.Filename", location="page 0 tag 270 ImageDescription",
                         field_class="name", action="drop", rule="fields.aperio.Filename"),
        ),
    )  # fmt: skip
    ids = FieldIds(plan, [("aperio.User", "CANARY-1"), ("free", "CANARY-2")])
    assert ids(f"aperio.{SECRET_KEY}") == "default-deny@page 0 tag 270"
    assert ids(f"aperio.{SECRET_KEY}[date]#2") == "default-deny@page 0 tag 270"
    assert ids("aperio.Filename") == "fields.aperio.Filename@page 0 tag 270"
    assert ids("free") == "canary#2"
    assert ids("something.never.planned") == "default-deny@field"
    counts = ids.counts({f"aperio.{SECRET_KEY}": 2, "aperio.Filename": 1, "free": 1})
    assert counts == {
        "default-deny@page 0 tag 270": 2,
        "fields.aperio.Filename@page 0 tag 270": 1,
        "canary#2": 1,
    }
    assert not any("jane" in k.lower() for k in counts)


def test_an_unknown_transfer_syntax_uid_is_not_reported() -> None:
    import pytest

    from slidegate.errors import UnsupportedSlideError
    from slidegate.formats.dicom_frames import compression_name

    with pytest.raises(UnsupportedSlideError) as err:
        compression_name("1.2.826.0.1.3680043.9.7733.445566")  # a private UID: source text
    assert "445566" not in str(err.value) and "445566" not in err.value.reason
    assert err.value.reason == "unsupported: DICOM transfer syntax unknown"
    with pytest.raises(UnsupportedSlideError) as err:
        compression_name("1.2.840.10008.1.2.4.100")  # MPEG2 video: a standard name is fine
    assert "MPEG2 Main Profile" in err.value.reason
    assert compression_name("1.2.840.10008.1.2.5") == "RLE"  # decoded since issue 13 item 2
