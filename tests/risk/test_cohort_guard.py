"""No slide can sink the cohort stage (issue 13 item 3): one slide's bad input to a cohort-wide
step (its features, its output's metadata, the risk model, the validation rows) withholds that
slide with the step and a reason; the others are decided as they would be without it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from slidegate.models import SlideReport, SlideSignature
from slidegate.stages import cohort as cohort_stage
from slidegate.stages.cohort import CohortOutcome, decide_cohort

from .conftest import write_spec


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[SlideReport], Path]:
    from slidegate.settings import Settings
    from slidegate.stages.context import prepare_release
    from slidegate.stages.slide import audit, deidentify, inventory
    from slidegate.synth import generate_cohort

    root = tmp_path_factory.mktemp("guard")
    cohort = generate_cohort(root / "c", slides=5, patients=5, seed=4, base_size=(384, 384))
    spec = write_spec(cohort.root, "guard", "restricted")
    ctx = prepare_release(spec, Settings(work_dir=root / "w"))
    reports = [audit(ctx, deidentify(ctx, inventory(ctx, s))) for s in ctx.slides]
    assert all(r.status == "ok" and r.signature is not None for r in reports)
    return ctx, reports, root


def _status(outcome: CohortOutcome) -> dict[str, tuple[str, str]]:
    return {s.pseudonym: (s.status, s.stage) for s in outcome.slides}


def _with_signature(rep: SlideReport, features: tuple[float, ...]) -> SlideReport:
    assert rep.signature is not None
    sig = SlideSignature(
        features=features, phash=rep.signature.phash, tile_sha256=rep.signature.tile_sha256
    )
    return rep.model_copy(update={"signature": sig})


def test_bad_inputs_of_three_slides_withhold_those_three_alone(
    audited: Any, tmp_path: Path
) -> None:
    """Three slides, each with a bad input to a cohort-wide step: a feature vector of another
    length (a report signed by another extractor: stacking it with the others once raised `all
    input arrays must have the same shape` for the cohort), a NaN in the features, an output
    whose metadata (the validation rows) cannot be read. Each is withheld with its step; the
    others are decided exactly as in a cohort without the three."""
    ctx, reports, _ = audited
    stale, nan, unreadable = (r.pseudonym for r in reports[:3])
    broken = tmp_path / "broken.ome.zarr"
    assert reports[2].output_path is not None
    shutil.copytree(reports[2].output_path, broken)
    (broken / "zarr.json").write_text("{not json", encoding="utf-8")
    changed = []
    for r in reports:
        assert r.signature is not None
        if r.pseudonym == stale:
            r = _with_signature(r, r.signature.features[:64])
        elif r.pseudonym == nan:
            r = _with_signature(r, (float("nan"), *r.signature.features[1:]))
        elif r.pseudonym == unreadable:
            r = r.model_copy(update={"output_path": str(broken)})
        changed.append(r)
    after = decide_cohort(ctx, changed)
    status = _status(after)
    reasons = {s.pseudonym: s.reason or "" for s in after.slides}
    assert status[stale] == ("withheld", "features") and "not comparable" in reasons[stale]
    assert status[nan] == ("withheld", "features") and "not finite" in reasons[nan]
    assert status[unreadable] == ("withheld", "validation")
    assert "metadata unreadable" in reasons[unreadable]
    assert not any(str(tmp_path) in r or "json" in r for r in reasons.values())

    bad = {stale, nan, unreadable}
    without = [
        r.model_copy(update={"status": "quarantined"}) if r.pseudonym in bad else r for r in reports
    ]
    reference = _status(decide_cohort(ctx, without))
    rest = {s: v for s, v in status.items() if s not in bad}
    assert rest and rest == {s: reference[s] for s in rest}
    assert any(st == "approved" for st, _ in rest.values())


def test_a_risk_model_error_of_one_slide_withholds_it_alone(
    audited: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the risk model raises whenever one given slide is among those scored;
    each slide is then scored alone, the one that fails is withheld, the rest scored again."""
    ctx, reports, _ = audited
    bad = reports[1].pseudonym
    real = cohort_stage.score_release
    scored: list[list[str]] = []

    def failing(rows: Any, by: Any, policies: Any, candidates: Any, **kw: Any) -> Any:
        scored.append(list(candidates))
        if bad in candidates:
            raise ValueError("a value the model cannot handle")
        return real(rows, by, policies, candidates, **kw)

    monkeypatch.setattr(cohort_stage, "score_release", failing)
    after = decide_cohort(ctx, reports)
    status = _status(after)
    assert status[bad] == ("withheld", "risk")
    (reason,) = [s.reason for s in after.slides if s.pseudonym == bad]
    assert reason is not None and "ValueError" in reason and "cannot handle" not in reason
    assert bad not in scored[-1] and len(scored[-1]) == len(reports) - 1
    assert all(stage == "decide" for s, (_, stage) in status.items() if s != bad)


@pytest.mark.slow  # each slide's rows through the GX suites alone: about a minute
def test_a_validation_error_of_one_slide_withholds_it_and_rescores(
    audited: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, reports, _ = audited
    bad = reports[0].pseudonym
    real = cohort_stage.validate_tables
    scored: list[list[str]] = []
    real_score = cohort_stage.score_release

    def counting(rows: Any, by: Any, policies: Any, candidates: Any, **kw: Any) -> Any:
        scored.append(list(candidates))
        return real_score(rows, by, policies, candidates, **kw)

    def failing(cohort: Any, metadata: Any, policy: Any, **kw: Any) -> Any:
        if bad in set(cohort["slide"]):
            raise KeyError("a row the suite cannot handle")
        return real(cohort, metadata, policy, **kw)

    monkeypatch.setattr(cohort_stage, "validate_tables", failing)
    monkeypatch.setattr(cohort_stage, "score_release", counting)
    after = decide_cohort(ctx, reports)
    assert _status(after)[bad] == ("withheld", "validation")
    assert after.validation_passed
    assert bad in scored[0] and bad not in scored[-1]  # the risk is scored again without it


def test_an_error_no_single_slide_explains_still_stops_the_release(
    audited: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, reports, _ = audited

    def broken(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("the step itself is broken")

    monkeypatch.setattr(cohort_stage, "score_release", broken)
    with pytest.raises(RuntimeError):
        decide_cohort(ctx, reports)
