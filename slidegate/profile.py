"""Profiles: named bundles of policies (deid per format, metadata, risk) and run behaviour.

`load_policies` loads a profile and every policy it names, so a bad file fails before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from slidegate.deid.policy import DeidPolicy, load_deid_policy
from slidegate.errors import PolicyError
from slidegate.policy import StrictModel, load_yaml_model
from slidegate.risk.policy import RiskPolicy, load_risk_policy
from slidegate.validate.policy import MetadataPolicy, load_metadata_policy


class Profile(StrictModel):
    description: str
    #: access mode of the release; drives P(attack) in the full risk model
    access: Literal["open", "controlled", "restricted"]
    #: slide format -> policy name in policies/deid/
    deid: dict[str, str]
    #: policy name in policies/metadata/
    metadata: str
    #: policy name in policies/risk/
    risk: str
    #: "auto": publish when every gate passes (manual steward approval comes later)
    approval: Literal["auto"] = "auto"
    #: a corrupt or unsupported slide: quarantine it and go on, or fail the whole release
    on_bad_slide: Literal["quarantine", "fail"] = "quarantine"


@dataclass(frozen=True)
class Policies:
    name: str
    profile: Profile
    deid: dict[str, DeidPolicy]
    metadata: MetadataPolicy
    risk: RiskPolicy

    def deid_for(self, fmt: str) -> DeidPolicy:
        try:
            return self.deid[fmt]
        except KeyError:
            raise PolicyError(
                f"profile {self.name!r} has no de-identification policy for format {fmt!r}; "
                f"add `{fmt}: <policy>` under `deid:` in the profile"
            ) from None


def load_policies(policies_dir: Path, profile_name: str) -> Policies:
    path = policies_dir / "profiles" / f"{profile_name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (policies_dir / "profiles").glob("*.yaml"))
        raise PolicyError(
            f"profile {profile_name!r} not found in {policies_dir / 'profiles'}; known: {known}"
        )
    profile = load_yaml_model(path, Profile)
    deid = {
        fmt: load_deid_policy(_named(policies_dir, "deid", name, path))
        for fmt, name in profile.deid.items()
    }
    return Policies(
        name=profile_name,
        profile=profile,
        deid=deid,
        metadata=load_metadata_policy(_named(policies_dir, "metadata", profile.metadata, path)),
        risk=load_risk_policy(_named(policies_dir, "risk", profile.risk, path)),
    )


def _named(policies_dir: Path, kind: str, name: str, profile_path: Path) -> Path:
    path = policies_dir / kind / f"{name}.yaml"
    if not path.is_file():
        raise PolicyError(
            f"profile {profile_path} names {kind} policy {name!r}, but {path} does not exist"
        )
    return path
