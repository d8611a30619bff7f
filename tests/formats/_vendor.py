"""Shared checks for the synthetic vendor fixtures (slidegate.synth.vendors): inventory, plan
with the format's policy, convert, audit, and a raw byte search of the output for every
planted canary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zarr

from slidegate.audit import AuditResult, audit_output
from slidegate.convert.ome_zarr import write_ome_zarr
from slidegate.deid.plan import plan_deid
from slidegate.deid.policy import load_deid_policy
from slidegate.formats import read_facts
from slidegate.models import DeidPlan, SlideFacts
from slidegate.synth.vendors import VendorSlide

POLICIES = Path(__file__).resolve().parents[2] / "policies" / "deid"


@dataclass(frozen=True)
class Released:
    facts: SlideFacts
    plan: DeidPlan
    out: Path
    audit: AuditResult


def release(slide: VendorSlide, work: Path) -> Released:
    facts = read_facts(slide.path, slide.path.name)
    policy = load_deid_policy(POLICIES / f"{facts.format}.yaml")
    plan = plan_deid(facts, policy, "s-0123456789abcdef")
    out = work / "s-0123456789abcdef.ome.zarr"
    write_ome_zarr(slide.path, plan, out)
    canaries = [(name, value) for name, value in slide.canaries.items()]
    return Released(facts, plan, out, audit_output(out, facts, plan, canaries))


def planted_hits(slide: VendorSlide, out: Path) -> list[tuple[str, str]]:
    """(file, field) for every planted value found in any output byte or path."""
    hits = []
    for p in out.rglob("*"):
        if not p.is_file():
            continue
        data = p.read_bytes().lower()
        rel = str(p.relative_to(out)).lower()
        for name, value in slide.canaries.items():
            v = value.lower()
            if v.encode() in data or v.encode("utf-16-le") in data or v in rel:
                hits.append((p.name, name))
    return hits


def assert_clean_release(slide: VendorSlide, work: Path) -> Released:
    """The full contract for one synthetic vendor file."""
    r = release(slide, work)
    assert r.facts.format == slide.format
    assert [(lv.height, lv.width) for lv in r.facts.levels] == list(slide.level_shapes)
    assert sorted((a.height, a.width) for a in r.facts.associated if a.height) == sorted(
        slide.associated
    )
    names = {f.name for f in r.facts.fields}
    planted = {n.split("#")[0] for n in slide.canaries if not n.startswith("label.")}
    missing = sorted(planted - names)
    assert missing == [], "planted fields not inventoried"
    assert r.audit.findings == () and r.audit.problems == (), (r.audit.findings, r.audit.problems)
    assert planted_hits(slide, r.out) == []
    group = zarr.open_group(r.out, mode="r")
    assert sorted(group.array_keys()) == [str(i) for i in range(len(slide.level_shapes))]
    for i, lv in enumerate(r.facts.levels):  # pixels equal the source: checked by the audit
        assert group[str(i)].shape[1:] == (lv.height, lv.width)
        assert (lv.height, lv.width) not in set(slide.associated)
    return r
