"""Each profile's limits come from published guidance (cited in its YAML comment), and under
the shipped limits the image term alone can change a decision: the same quasi-identifier rows,
only the slides' relation to the attacker's reference block differs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from slidegate.profile import load_policies
from slidegate.pseudonym import Pseudonymizer
from slidegate.risk.mitigate import RULE_CAP
from slidegate.risk.model import assess_cohort
from slidegate.risk.qiset import column_roles
from slidegate.risk.result import CohortRisk

P = Pseudonymizer(b"t" * 32)
#: age bands that stay apart at every level the profiles may generalise to (band20)
AGES = ["20-29", "40-49", "60-69", "80-89"]


def cohort(classes: int, size: int, slides: int, same_block: bool) -> pd.DataFrame:
    """`classes` classes of `size` patients (one age band each), `slides` slides per patient,
    every slide of a patient from one block (same_block) or each from its own specimen."""
    rows = []
    for c in range(classes):
        for h in range(size):
            pid = f"{c}/{h}"
            for s in range(slides):
                where = "0" if same_block else str(s)
                rows.append(
                    {
                        "slide": P("s", f"{pid}/{s}"),
                        "patient": P("p", pid),
                        "block": P("b", f"{pid}/{where}"),
                        "specimen": P("x", f"{pid}/{where}"),
                        "age": AGES[c],
                        "sex": "F",
                        "diagnosis": "C18.7",
                        "site": "colon",
                        "collection_year": "2019",
                    }
                )
    return pd.DataFrame(rows)


def run(policies_dir: Path, profile: str, table: pd.DataFrame, **limits: object) -> CohortRisk:
    pol = load_policies(policies_dir, profile)
    lim = pol.profile.risk_limits.model_copy(update=limits)
    qis = column_roles(pol.metadata, pol.risk).quasi_identifiers
    return assess_cohort(table, pol.risk, lim, pol.hierarchies, quasi_identifiers=qis)


@pytest.mark.parametrize(
    ("profile", "cited", "max_risk"),
    [
        ("open-access", ["EMA policy 0070", "EMA/90915/2016", "Health Canada", "0.09"], 0.09),
        ("controlled-access", ["El Emam", "cell size of five", "0.2"], 0.2),
        ("restricted", ["El Emam", "cell size of five", "0.2"], 0.2),
    ],
)
def test_limits_cite_their_source(
    policies_dir: Path, profile: str, cited: list[str], max_risk: float
) -> None:
    text = (policies_dir / "profiles" / f"{profile}.yaml").read_text(encoding="utf-8")
    comment = " ".join(
        line.lstrip("# ").strip()
        for line in text[: text.index("risk_limits:")].splitlines()
        if line.startswith("#")
    )
    for needle in cited:
        assert needle in comment, needle
    assert "our estimate" in comment  # what is not a published figure says so
    limits = load_policies(policies_dir, profile).profile.risk_limits
    assert limits.max_risk == max_risk and limits.max_mean_risk == max_risk


def test_open_access_needs_classes_of_12_on_the_quasi_identifiers_alone(
    policies_dir: Path,
) -> None:
    # without the image term (P(ref) 0): 1/12 = 0.083 <= 0.09 < 1/11
    assert run(policies_dir, "open-access", cohort(1, 12, 1, True), p_ref=0.0).passed
    eleven = run(policies_dir, "open-access", cohort(1, 11, 1, True), p_ref=0.0)
    assert not eleven.passed and eleven.released_table["slide"] == []


def test_open_access_image_term_alone_changes_the_decision(policies_dir: Path) -> None:
    # 18 patients in one class, two slides each. From two specimens: r_img 0.62, R 0.085 <=
    # 0.09; both from one block: r_img 0.84, R 0.095 > 0.09, so the cap keeps one slide each
    apart = run(policies_dir, "open-access", cohort(1, 18, 2, same_block=False))
    together = run(policies_dir, "open-access", cohort(1, 18, 2, same_block=True))
    assert apart.qi_before == together.qi_before  # the same quasi-identifier rows
    assert apart.passed and apart.cap is None and len(apart.released_table["slide"]) == 36
    assert max(p.risk for p in apart.patients) == pytest.approx(1 - 17 / 18 * (1 - 0.05 * 0.62))
    assert max(p.risk_before for p in together.patients) > 0.09
    assert together.passed and together.cap == 1
    assert len(together.withheld_slides) == 18
    assert all(r.startswith(f"risk [{RULE_CAP}]") for r in together.withheld_slides.values())


def test_controlled_access_image_term_alone_changes_the_decision(policies_dir: Path) -> None:
    # classes of 2, two slides each: from two specimens R 0.197 <= 0.2; from one block R 0.213
    apart = run(policies_dir, "controlled-access", cohort(4, 2, 2, same_block=False))
    together = run(policies_dir, "controlled-access", cohort(4, 2, 2, same_block=True))
    assert apart.qi_before == together.qi_before
    assert apart.passed and apart.cap is None and not apart.withheld_slides
    assert max(p.risk for p in apart.patients) == pytest.approx(0.3 * (1 - 0.5 * (1 - 0.5 * 0.62)))
    assert together.passed and together.cap == 1 and len(together.withheld_slides) == 8
    # a unique patient is withheld whatever its slides (R = P(attack) = 0.3 > 0.2)
    unique = run(policies_dir, "controlled-access", cohort(1, 1, 1, same_block=False))
    assert not unique.passed


def test_restricted_image_term_cannot_change_a_decision(policies_dir: Path) -> None:
    """The documented limitation: R <= P(attack) = 0.05 < 0.2 for every patient, so the
    enclave releases a unique patient with four sections of one block as it releases one with
    a single slide; a limit under 0.05 would withhold every unique patient as well."""
    for slides in (1, 4):
        result = run(policies_dir, "restricted", cohort(1, 1, slides, same_block=True))
        assert result.passed and max(p.risk for p in result.patients) <= 0.05
