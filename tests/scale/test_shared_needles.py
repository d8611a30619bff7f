"""The canaries among a slide's audit needles: the same labels for every slide (so they can be
compiled once per process), numbered without a rescan per canary; the canaries file read once
per process and file version."""

from __future__ import annotations

import json
import os
from pathlib import Path

from slidegate.audit.needles import phi_needles
from slidegate.models import DeidPlan, SlideFacts
from slidegate.stages.context import ReleaseContext


def test_canary_labels_repeat_with_numbers_and_are_marked() -> None:
    facts = SlideFacts.model_validate(
        {"slide_id": "s", "source_path": "/x", "format": "svs", "size": 1, "sha256": "0",
         "mpp_x": None, "mpp_y": None, "levels": [], "associated": [],
         "fields": [{"name": "canary:f", "value": "a field value here", "location": "x"}]}
    )  # fmt: skip
    plan = DeidPlan.model_validate(
        {"slide_id": "s", "pseudonym": "s-1", "format": "svs", "fields": [], "levels": [],
         "dropped_images": [], "mpp_x": None, "mpp_y": None}
    )  # fmt: skip
    canaries = [("canary:f", f"CANARYVALUE{i:04d}") for i in range(50)]
    needles = phi_needles(facts, plan, canaries)
    own, shared = needles.split()
    assert own == {"canary:f": b"a field value here"}  # the field took the bare label
    assert set(shared) == {f"canary:f#{i}" for i in range(2, 52)}
    assert shared["canary:f#2"] == b"CANARYVALUE0000"
    assert len(needles) == 51


def test_the_canaries_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "canaries.json"
    path.write_text(json.dumps({"canaries": [{"field": "a", "value": "FIRST-CANARY"}]}))
    ctx = ReleaseContext.__new__(ReleaseContext)
    object.__setattr__(ctx, "canaries_path", path)
    assert ctx.canaries() == (("canary:a", "FIRST-CANARY"),)
    assert ctx.canaries() is ctx.canaries()  # one parse per process
    path.write_text(json.dumps({"canaries": [{"field": "b", "value": "SECOND-CANARY-X"}]}))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert ctx.canaries() == (("canary:b", "SECOND-CANARY-X"),)
    path.unlink()
    try:
        ctx.canaries()
    except Exception as exc:  # a vanished file is the spec error it always was
        assert type(exc).__name__ == "SpecError"
    else:
        raise AssertionError("a missing canaries file must fail")
