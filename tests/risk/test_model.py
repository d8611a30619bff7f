"""The composite model and its mitigation, on hand-made released tables and shipped profiles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from slidegate.errors import SpecError
from slidegate.profile import load_policies
from slidegate.pseudonym import Pseudonymizer
from slidegate.risk.model import assess_cohort
from slidegate.risk.policy import RiskLimits
from slidegate.risk.qiset import column_roles
from slidegate.risk.report import risk_markdown, risk_plot_png

P = Pseudonymizer(b"m" * 32)
#: what the shipped metadata policy publishes and does not pseudonymise
QIS = ("age", "sex", "diagnosis", "site", "collection_year")


def table(groups: list[tuple[int, str, str, str, str]], slides: int = 2) -> pd.DataFrame:
    """groups: (patients, age band, sex, diagnosis, site); slides per patient on 2 blocks."""
    rows, n = [], 0
    for count, age, sex, dx, site in groups:
        for _ in range(count):
            n += 1
            for s in range(slides):
                rows.append(
                    {
                        "slide": P("s", f"{n}/{s}"),
                        "patient": P("p", str(n)),
                        "block": P("b", f"{n}/{s % 2}"),
                        "specimen": P("x", f"{n}/{s % 2}"),
                        "age": age,
                        "sex": sex,
                        "diagnosis": dx,
                        "site": site,
                        "collection_year": "2019",
                    }
                )
    return pd.DataFrame(rows)


COHORT = [
    (2, "40-49", "F", "C18.7", "colon"),
    (1, "40-49", "M", "C20.1", "rectum"),  # joins the next one at category C20
    (1, "40-49", "M", "C20.9", "rectum"),
    (1, "50-59", "F", "C50.9", "breast"),  # joins the next one at age band20
    (1, "40-49", "F", "C50.9", "breast"),
    (3, "60-69", "M", "C61", "prostate"),
    (1, "20-29", "F", "C49.4", "soft tissue"),  # rare: unique at every allowed level
]


#: the mechanics tests' limits (the open-access profile before its EMA 0.09 threshold):
#: P(attack) 1, P(ref) 0.1, max R 0.6 lets a class of 2 through and never a unique patient
OPEN_06 = {
    "p_attack": 1.0,
    "p_ref": 0.1,
    "max_risk": 0.6,
    "max_mean_risk": 0.6,
    "max_suppression": 0.4,
    "max_levels": {"age": "band20", "diagnosis": "category", "site": "organ"},
}
#: and the controlled-access profile before its El Emam 0.2 threshold
CONTROLLED_033 = {
    "p_attack": 0.3,
    "p_ref": 0.2,
    "max_risk": 0.33,
    "max_mean_risk": 0.25,
    "max_suppression": 0.2,
    "max_levels": {"age": "band20"},
}


def run(policies_dir: Path, profile: str, rows: pd.DataFrame, **limits: object):  # type: ignore[no-untyped-def]
    pol = load_policies(policies_dir, profile)
    base = OPEN_06 if profile == "open-access" else CONTROLLED_033
    lim = pol.profile.risk_limits.model_copy(update={**base, **limits})
    qis = column_roles(pol.metadata, pol.risk).quasi_identifiers
    return assess_cohort(rows, pol.risk, lim, pol.hierarchies, quasi_identifiers=qis)


def test_open_and_controlled_give_different_explained_outcomes(policies_dir: Path) -> None:
    rows = table(COHORT)
    open_ = run(policies_dir, "open-access", rows)
    controlled = run(policies_dir, "controlled-access", rows)
    # open access: generalise (age band20, diagnosis category), then suppress the rare patient
    assert [s.action for s in open_.steps] == ["assess", "generalise", "suppress"]
    assert open_.levels == {
        "age": "band20", "diagnosis": "category", "site": "detailed", "collection_year": "year"
    }  # fmt: skip
    assert open_.passed and len(open_.withheld_patients) == 1
    rare = P("p", "10")
    assert open_.withheld_patients == (rare,)
    reason = open_.patient_reason(rare)
    assert reason.startswith("risk [risk.max_risk]: R 1.00 > 0.60") and "class 1 patient" in reason
    assert open_.patients[-1].rule == "risk.max_risk"
    assert open_.steps[-1].max_risk <= 0.6 and open_.steps[-1].mean_risk <= 0.6
    released = open_.table()
    assert set(released["diagnosis"]) == {"C18", "C20", "C50", "C61"}
    assert rare not in set(released["patient"])
    # controlled access: P(attack) 0.3 keeps everyone under the limit, nothing generalised
    assert controlled.passed and controlled.withheld_patients == ()
    assert controlled.levels["age"] == "band10" and controlled.levels["diagnosis"] == "code"
    assert "not needed" in controlled.steps[1].detail
    assert max(p.risk for p in controlled.patients) <= 0.33
    for r in (open_, controlled):
        assert r.figures()["max_risk"] <= r.inputs["max_risk"]


def test_mitigation_withholds_the_cohort_with_a_reason(policies_dir: Path) -> None:
    rare = ["C49.4", "D48.1", "C74.0", "C37", "C40.2", "C62.9"]
    rows = table([(1, "40-49", "F", dx, "soft tissue") for dx in rare])
    result = run(policies_dir, "open-access", rows)
    assert not result.passed
    assert [s.action for s in result.steps][-1] == "withhold"
    assert result.reason.startswith("cohort withheld [risk.cohort]: max R 1.00 (limit 0.60)")
    assert all(p.decision == "withheld" and p.reason.startswith("risk") for p in result.patients)
    # six unique patients, a budget of two: nothing is suppressed, the cohort is withheld
    assert {p.rule for p in result.patients} == {"risk.cohort"}
    assert any("risk: cohort withheld" in p.reason for p in result.patients)
    assert result.table().empty


def test_cap_keeps_fewer_slides_when_image_linkage_dominates(policies_dir: Path) -> None:
    rows = table([(3, "40-49", "F", "C18.7", "colon"), (3, "50-59", "M", "C20", "rectum")], 4)
    # an insider with the block archive: P(ref) 1; R with 4 slides ~0.99, with 1 slide ~0.7
    result = run(
        policies_dir,
        "open-access",
        rows,
        p_ref=1.0,
        max_risk=0.8,
        max_mean_risk=0.8,
        max_suppression=0.0,
    )
    actions = [s.action for s in result.steps]
    assert actions == ["assess", "cap", "generalise"]
    assert result.passed and result.cap is not None and result.cap < 4
    assert result.withheld_slides and all(
        r.startswith("risk [risk.slide_cap]: slide cap") for r in result.withheld_slides.values()
    )
    kept = result.table().groupby("patient").size()
    assert (kept <= result.cap).all()
    assert max(p.risk for p in result.patients) <= 0.8


def test_report_and_plot(policies_dir: Path, tmp_path: Path) -> None:
    result = run(policies_dir, "open-access", table(COHORT))
    md = risk_markdown(result)
    for needle in (
        "## Mitigation steps",
        "| generalise |",
        "| suppress |",
        "P(attack) 1.0",
        "## Patients",
        "l_diversity",
    ):
        assert needle in md
    png = risk_plot_png(result, tmp_path / "risk.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_raw_patient_ids_are_refused(policies_dir: Path) -> None:
    rows = table(COHORT)
    rows.loc[0, "patient"] = "MRN-0001"
    with pytest.raises(SpecError, match="not pseudonymised") as err:
        run(policies_dir, "open-access", rows)
    assert "MRN-0001" not in str(err.value)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        RiskLimits(p_attack=0, p_ref=0.1, max_risk=0.5, max_mean_risk=0.5)


def test_population_table_gives_journalist_risk(policies_dir: Path, tmp_path: Path) -> None:
    rows = table(COHORT)
    firsts = rows.drop_duplicates("patient")
    # registry counts at the most detailed level (ages as bands of 10, like the release)
    pop = firsts[[*QIS]].drop_duplicates().assign(count=200)
    pol = load_policies(policies_dir, "open-access")
    qis = column_roles(pol.metadata, pol.risk).quasi_identifiers
    result = assess_cohort(
        rows,
        pol.risk,
        pol.profile.risk_limits,
        pol.hierarchies,
        quasi_identifiers=qis,
        population=pop,
    )
    assert result.inputs["population_table"] is True
    assert result.passed and result.withheld_patients == ()  # rare in the cohort, not in life
    assert max(p.r_qi for p in result.patients) == pytest.approx(1 / 200)
    assert result.qi_before["journalist_max"] == pytest.approx(1 / 200)
    # the same via a risk policy naming a CSV next to it
    (tmp_path / "pop.csv").write_text(pop.to_csv(index=False))
    text = (policies_dir / "risk" / "open.yaml").read_text() + "population: pop.csv\n"
    (tmp_path / "open.yaml").write_text(text)
    from slidegate.risk.policy import load_risk_policy

    assert load_risk_policy(tmp_path / "open.yaml").population == str(tmp_path / "pop.csv")
