"""Risk policies, profile risk limits and hierarchies load strictly; shipped ones are coherent."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidegate.errors import PolicyError
from slidegate.profile import load_policies
from slidegate.risk.policy import load_risk_policy

PROFILES = ("open-access", "controlled-access", "restricted")


def test_shipped_policies_load(policies_dir: Path) -> None:
    for name in ("open", "controlled", "restricted"):
        pol = load_risk_policy(policies_dir / "risk" / f"{name}.yaml")
        assert pol.sensitive == "diagnosis" and pol.image_linkage is not None


def test_profiles_order_access_modes(policies_dir: Path) -> None:
    lim = {n: load_policies(policies_dir, n).profile.risk_limits for n in PROFILES}
    o, c, r = lim["open-access"], lim["controlled-access"], lim["restricted"]
    assert o.p_attack == 1.0 and o.p_attack > c.p_attack > r.p_attack
    # the generalisation limits name real levels of the hierarchies
    for name in PROFILES:
        pols = load_policies(policies_dir, name)
        for col, level in pols.profile.risk_limits.max_levels.items():
            ladder = pols.hierarchies.get(pols.risk.generalisation[col].hierarchy)
            assert ladder.index(level) >= ladder.index(pols.risk.generalisation[col].released_at)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("quasi_identifier: [age]\n", "unknown key 'quasi_identifier'"),
        ("p_attack: 1.0\n", "unknown key 'p_attack'"),
        ("quasi_identifiers: [age, sex]\n", "declare a column non_identifying"),
        (
            "image_linkage: {priors: {same_block: 1.5, other_block: 0, other_specimen: 0}}\n",
            "same_block",
        ),
    ],
)
def test_bad_risk_policy(tmp_path: Path, body: str, needle: str) -> None:
    base = {"sensitive": "sensitive: diagnosis\n"}
    base[body.split(":")[0]] = body
    path = tmp_path / "risk.yaml"
    path.write_text("".join(base.values()), encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_risk_policy(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_profile_without_risk_limits_is_refused(policies_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "policies"
    shutil.copytree(policies_dir, copy)
    path = copy / "profiles" / "open-access.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("risk_limits:", "risk_limitz:"), encoding="utf-8")
    with pytest.raises(PolicyError, match="risk_limit"):
        load_policies(copy, "open-access")
