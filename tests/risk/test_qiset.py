"""The quasi-identifier set is every published column that is not a keyed pseudonym, unless the
metadata policy declares it non-identifying with a written reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slidegate.errors import PolicyError
from slidegate.profile import load_policies
from slidegate.risk.qiset import column_roles
from slidegate.validate.policy import load_metadata_policy

PROFILES = ("open-access", "controlled-access", "restricted")


@pytest.mark.parametrize("profile", PROFILES)
def test_shipped_qis_are_every_published_non_pseudonym(policies_dir: Path, profile: str) -> None:
    pol = load_policies(policies_dir, profile)
    roles = column_roles(pol.metadata, pol.risk)
    published = pol.metadata.released_columns()
    assert roles.quasi_identifiers == ("age", "sex", "diagnosis", "site", "collection_year")
    assert set(roles.pseudonyms) == {"slide", "patient", "block", "specimen"}
    assert set(roles.quasi_identifiers) | set(roles.pseudonyms) == set(published)
    assert roles.non_identifying == {}


def _copy(policies_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "policies"
    shutil.copytree(policies_dir, copy)
    return copy


def test_a_declared_non_identifying_column_is_not_scored(
    policies_dir: Path, tmp_path: Path
) -> None:
    copy = _copy(policies_dir, tmp_path)
    meta = copy / "metadata" / "cohort.yaml"
    text = meta.read_text().replace(
        "  site:\n    action: keep\n",
        "  site:\n    action: keep\n    non_identifying:\n"
        "      reason: every slide of this study comes from the same organ site\n",
    )
    meta.write_text(text)
    risk = copy / "risk" / "open.yaml"  # site may then not be generalised by the risk model
    risk.write_text(
        risk.read_text().replace("  site: {hierarchy: site, released_at: detailed}\n", "")
    )
    pol = load_policies(copy, "open-access")
    roles = column_roles(pol.metadata, pol.risk)
    assert "site" not in roles.quasi_identifiers and "collection_year" in roles.quasi_identifiers
    assert roles.non_identifying == {
        "site": "every slide of this study comes from the same organ site"
    }


@pytest.mark.parametrize(
    ("declaration", "needle"),
    [
        ("    non_identifying: {}\n", "reason"),  # no written reason
        ("    non_identifying: {reason: short}\n", "at least 20"),
        ("    non_identifying: {reason: a long enough reason here, why: x}\n", "why"),
    ],
)
def test_declarations_are_strict(
    policies_dir: Path, tmp_path: Path, declaration: str, needle: str
) -> None:
    copy = _copy(policies_dir, tmp_path)
    meta = copy / "metadata" / "cohort.yaml"
    meta.write_text(
        meta.read_text().replace(
            "  sex:\n    action: keep\n", "  sex:\n    action: keep\n" + declaration
        )
    )
    with pytest.raises(PolicyError, match=needle):
        load_metadata_policy(meta)


def test_a_pseudonym_cannot_be_declared_non_identifying(policies_dir: Path, tmp_path: Path) -> None:
    copy = _copy(policies_dir, tmp_path)
    meta = copy / "metadata" / "cohort.yaml"
    meta.write_text(
        meta.read_text().replace(
            "  block: {action: pseudonymize, kind: b, ",
            "  block: {action: pseudonymize, kind: b, non_identifying: "
            "{reason: a keyed pseudonym links to nothing}, ",
        )
    )
    assert "non_identifying" in meta.read_text()  # the declaration is in the file
    with pytest.raises(PolicyError, match="released values"):
        load_metadata_policy(meta)


def test_risk_policy_naming_a_non_qi_is_refused(policies_dir: Path, tmp_path: Path) -> None:
    copy = _copy(policies_dir, tmp_path)
    risk = copy / "risk" / "controlled.yaml"
    risk.write_text(
        risk.read_text().replace(
            "generalisation:\n",
            "generalisation:\n  block: {hierarchy: site, released_at: detailed}\n",
        )
    )
    pol = load_policies(copy, "controlled-access")
    with pytest.raises(PolicyError, match=r"\['block'\] that are not quasi-identifiers"):
        column_roles(pol.metadata, pol.risk)
