"""Profiles: named bundles of policies (deid per format, metadata, risk) and run behaviour.

`load_policies` loads a profile and every policy it names, so a bad file fails before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from slidegate.deid.policy import DeidPolicy, load_deid_policy
from slidegate.errors import PolicyError
from slidegate.policy import StrictModel, load_yaml_model
from slidegate.publish.policy import PublishPolicy
from slidegate.risk.ladders import Hierarchies, load_hierarchies
from slidegate.risk.policy import (
    KeyPolicy,
    LedgerPolicy,
    RiskLimits,
    RiskPolicy,
    load_risk_policy,
)
from slidegate.validate.policy import MetadataPolicy, load_metadata_policy


class Conversion(StrictModel):
    """How slides are written (see slidegate.convert): tile pass-through where the source
    allows it (else lossless), lossless zstd re-encode, or JPEG re-encode at `quality`."""

    mode: Literal["passthrough", "lossless", "jpeg"] = "passthrough"
    quality: int = Field(default=90, ge=1, le=100)
    #: "2x": rebuild the pyramid in 2x steps from one decode of the base level
    pyramid: Literal["native", "2x"] = "native"
    #: also write a de-identified copy in the source's own format (SVS, generic TIFF, DICOM),
    #: published next to the OME-Zarr; other formats are released without one
    original_copy: bool = False
    #: how the audit proves the written pixels: "by_cost" proves pass-through levels by their
    #: bytes (each chunk is its source tile) and decodes only levels whose pixels were
    #: produced (re-encoded, rebuilt); "full" decodes and compares every level
    audit: Literal["by_cost", "full"] = "by_cost"


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
    #: "auto": publish when every gate passes; "manual": the flow pauses before publishing
    #: until a steward approves (Prefect UI or `slidegate approve RUN_ID`)
    approval: Literal["auto", "manual"] = "auto"
    #: manual approval only: a release not answered within this many days is rejected
    approval_timeout_days: float = Field(default=7.0, gt=0)
    #: a corrupt or unsupported slide: quarantine it and go on, or fail the whole release
    on_bad_slide: Literal["quarantine", "fail"] = "quarantine"
    #: text, a label or a barcode seen in the published pixels (slidegate.burnin, on one low
    #: level): quarantine the slide; "review": the release waits for a steward (even under
    #: `approval: auto`) with blurred previews in the work area; "report": count it in the
    #: slide report and publish
    burned_in: Literal["quarantine", "review", "report"] = "quarantine"
    #: the access mode's risk figures: P(attack), P(ref), thresholds, mitigation limits
    risk_limits: RiskLimits
    #: cross-release ledger: what to do with a slide or patient published before
    ledger: LedgerPolicy = LedgerPolicy()
    #: pseudonym key: fresh per release (default) or a named study key
    pseudonym_key: KeyPolicy = KeyPolicy()
    #: output encoding of the slides
    conversion: Conversion = Conversion()
    #: S3 targets only: Object Lock retention and server-side encryption of every object
    publish: PublishPolicy = PublishPolicy()


@dataclass(frozen=True)
class Policies:
    name: str
    profile: Profile
    deid: dict[str, DeidPolicy]
    metadata: MetadataPolicy
    risk: RiskPolicy
    hierarchies: Hierarchies

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
        hierarchies=load_hierarchies(_named(policies_dir, "risk", "hierarchies", path)),
    )


def _named(policies_dir: Path, kind: str, name: str, profile_path: Path) -> Path:
    path = policies_dir / kind / f"{name}.yaml"
    if not path.is_file():
        raise PolicyError(
            f"profile {profile_path} names {kind} policy {name!r}, but {path} does not exist"
        )
    return path
