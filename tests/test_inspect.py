"""`slidegate inspect`: every field with its action and rule; only kept values are printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main
from slidegate.deid.plan import plan_deid
from slidegate.formats import read_facts
from slidegate.inspect import inspect_slide, mask, render
from slidegate.profile import load_policies
from slidegate.synth.mrxs import canary_meta, write_mrxs


def _hidden_values(path: Path, policies_dir: Path, profile: str = "open-access") -> set[str]:
    """Values of every field the policy does not keep (long enough to search for)."""
    facts = read_facts(path, path.name)
    policies = load_policies(policies_dir, profile)
    plan = plan_deid(facts, policies.deid_for(facts.format), "x")
    kept = {f.value for f, p in zip(facts.fields, plan.fields, strict=True) if p.action == "keep"}
    # words that are also part of field names or locations (e.g. "Microscope") are not values
    labels = " ".join(f"{f.name} {f.location}" for f in facts.fields)
    return {
        f.value
        for f, p in zip(facts.fields, plan.fields, strict=True)
        if p.action != "keep"
        and len(f.value) >= 4
        and not any(f.value in k for k in kept)
        and f.value not in labels
    }


def test_mask_shows_only_the_length() -> None:
    assert mask("CPAPERIOCS") == "•••• (10 chars)"
    assert mask("5") == "•••• (1 char)"


def test_real_svs_prints_no_identifying_value(
    real_slides: Path, policies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slide = real_slides / "aperio-svs" / "CMU-1-Small-Region.svs"
    assert main(["inspect", str(slide), "--profile", "open-access"]) == 0
    out = capsys.readouterr().out
    for value in ["CPAPERIOCS", "CMU-1", "12/29/09", "09:59:15", "1004486", "b414003d"]:
        assert value not in out
    hidden = _hidden_values(slide, policies_dir)
    assert len(hidden) > 5
    assert [v for v in hidden if v in out] == []
    # kept technical values are printed, with their rule
    for name, value in [("aperio.MPP", "0.4990"), ("aperio.AppMag", "20")]:
        line = next(ln for ln in out.splitlines() if ln.split()[:1] == [name])
        assert " keep " in line and f"fields.{name}" in line and line.rstrip().endswith(value)
    assert "aperio.OriginalWidth" in out and "46920" in out
    # every field listed with its action; label and macro listed as never published
    assert "aperio.User" in out and "•••• (36 chars)" in out
    assert "-> 2009" in out  # coarsened date: only the published year
    assert "label" in out and "macro" in out and "never published" in out
    assert "2220 x 2967" in out


def test_real_czi_prints_no_identifying_value(real_slides: Path, policies_dir: Path) -> None:
    slide = real_slides / "zeiss-czi" / "mosaic_test.czi"
    policies = load_policies(policies_dir, "restricted")
    out = render(inspect_slide(slide, policies))
    for value in ["Timm", "Tim-Most-complex", "2019-12-07T00:34:54", "2019-12-06T16:35:44"]:
        assert value not in out
    assert "czi.Metadata/Information/Document/UserName" in out
    assert "1.0833333333333333E-06" in out  # kept scaling
    assert [v for v in _hidden_values(slide, policies_dir, "restricted") if v in out] == []


def test_synthetic_mrxs_prints_no_canary(tmp_path: Path, policies_dir: Path) -> None:
    meta = canary_meta(seed=9, n=3)
    path = write_mrxs(tmp_path, "M0003", meta, seed=9, size=(512, 512), levels=2)
    view = inspect_slide(path, load_policies(policies_dir, "open-access"))
    out = render(view)
    assert [v for _, v in meta.canaries() if v in out] == []
    actions = {r.name: r.action for r in view.rows}
    assert actions["mirax.GENERAL.SLIDE_NAME"] == "drop"
    assert actions["mrxs.datafile.SLIDE_ID"] == "drop"
    assert actions["mirax.GENERAL.OBJECTIVE_MAGNIFICATION"] == "keep"
    assert {a.kind for a in view.associated} == {"label", "macro", "thumbnail"}


def test_format_without_policy_in_profile_is_all_dropped(
    real_slides: Path, policies_dir: Path
) -> None:
    from dataclasses import replace

    policies = load_policies(policies_dir, "open-access")
    bare = replace(policies, deid={}, profile=policies.profile.model_copy(update={"deid": {}}))
    view = inspect_slide(real_slides / "aperio-svs" / "CMU-1-Small-Region.svs", bare)
    assert {r.action for r in view.rows} == {"drop"}
    assert "default-deny" in view.policy
