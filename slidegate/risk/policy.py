"""Risk policies (policies/risk/*.yaml) and the risk settings of a profile.

`RiskPolicy` describes the model for a kind of cohort: along which hierarchy each
quasi-identifier can be generalised and at which level the metadata policy already releases it,
the sensitive attribute, the image-linkage priors. The quasi-identifiers themselves are not
listed here: they are every released column that is not a pseudonym (slidegate.risk.qiset).
The profile adds what depends on the access mode (`RiskLimits`: P(attack), P(ref), thresholds,
mitigation limits), the ledger policy and the pseudonym key mode. DESIGN.md section 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from slidegate.errors import PolicyError
from slidegate.policy import StrictModel, load_yaml_model

Probability = float


class Generalisation(StrictModel):
    #: hierarchy name in policies/risk/hierarchies.yaml (age, date, icd10, site)
    hierarchy: str
    #: the level the released table already has (set by the metadata policy)
    released_at: str


class LinkagePriors(StrictModel):
    """P(a reference image is matched to a released slide) by their relation."""

    same_block: Probability = Field(ge=0, le=1)
    other_block: Probability = Field(ge=0, le=1)
    other_specimen: Probability = Field(ge=0, le=1)


class OnnxExtractor(StrictModel):
    """A steward's feature extractor (slidegate.risk.onnx): an ONNX model file, run on the CPU
    on the registered tissue of each slide, its embeddings compared by cosine."""

    #: the model file, relative to the risk policy file
    model: str
    #: sha256 of the model file: a different file is refused where it is loaded
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    #: the model's input: (views, 3, input_size, input_size) float32 RGB in [0, 1]
    input_size: int = Field(default=64, ge=8, le=1024)
    #: turns of the registered tissue embedded (each also mirrored): 360/rotations degrees apart
    rotations: int = Field(default=16, ge=1, le=64)


class ImageLinkage(StrictModel):
    priors: LinkagePriors
    #: None: the built-in placement-invariant descriptor (slidegate.risk.registration)
    extractor: OnnxExtractor | None = None
    #: r_img(h): the prior, the empirical per-patient match rate, or the larger of both
    estimate: Literal["prior", "empirical", "max"] = "max"
    draws: int = Field(default=20, ge=1, le=1000)
    seed: int = 0
    block_column: str = "block"
    specimen_column: str = "specimen"


class RiskPolicy(StrictModel):
    #: the sensitive attribute whose distinct l-diversity is reported (None: not reported)
    sensitive: str | None = None
    #: released column -> how it may be generalised further by mitigation
    generalisation: dict[str, Generalisation] = Field(default_factory=dict)
    image_linkage: ImageLinkage | None = None
    #: population frequency table (CSV: quasi-identifier columns + count), relative to the
    #: policy file; gives journalist risk
    population: str | None = None
    patient_column: str = "patient"
    slide_column: str = "slide"

    @model_validator(mode="before")
    @classmethod
    def _no_qi_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and "quasi_identifiers" in data:
            raise ValueError(
                "'quasi_identifiers' is not set in the risk policy: every released column that "
                "is not a pseudonym is one; declare a column non_identifying (with a reason) "
                "in the metadata policy instead"
            )
        return data


class RiskLimits(StrictModel):
    """The access mode's part of the model: R(h) = P(attack) * (1 - (1 - r_qi) * (1 -
    P(ref) * r_img)); the cohort passes when max R <= max_risk and mean R <= max_mean_risk."""

    p_attack: Probability = Field(gt=0, le=1)
    p_ref: Probability = Field(ge=0, le=1)
    max_risk: Probability = Field(gt=0, le=1)
    max_mean_risk: Probability = Field(gt=0, le=1)
    #: share of patients mitigation may suppress (withhold) before it withholds the cohort
    max_suppression: float = Field(default=0.2, ge=0, le=1)
    #: slides-per-patient cap: mitigation never caps below this
    min_slides_per_patient: int = Field(default=1, ge=1)
    #: released column -> the highest hierarchy level mitigation may generalise it to
    max_levels: dict[str, str] = Field(default_factory=dict)


class LedgerPolicy(StrictModel):
    """Cross-release ledger (private SQLite file in the work area by default)."""

    #: a slide published before under another pseudonym: withhold it (block) or report (warn)
    on_rerelease: Literal["block", "warn"] = "block"
    #: a patient whose slides were published before under another key
    on_patient_other_key: Literal["block", "warn"] = "warn"
    #: perceptual hashes (63 bits) this close count as the same slide re-encoded: a re-encoded
    #: copy differs by 0-2 bits, another section of the same block by ~8-20 (chance: ~32)
    phash_max_distance: int = Field(default=4, ge=0, le=63)


class KeyPolicy(StrictModel):
    """Pseudonym keys: a fresh key per release, or a named study key for stable pseudonyms."""

    mode: Literal["release", "study"] = "release"
    study: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

    @model_validator(mode="after")
    def _named(self) -> KeyPolicy:
        if (self.mode == "study") != (self.study is not None):
            raise ValueError("'study' (the key name) is required for mode: study and only there")
        return self


def load_risk_policy(path: Path) -> RiskPolicy:
    """Load a risk policy YAML; unknown keys or bad values raise PolicyError. A relative
    `population` path is resolved against the policy file's folder and must exist."""
    policy = load_yaml_model(path, RiskPolicy)
    if policy.population is not None:
        pop = (path.parent / policy.population).resolve()
        if not pop.is_file():
            raise PolicyError(
                f"risk policy {path} names population table {policy.population!r}, but {pop} "
                "does not exist; fix the path or remove 'population'"
            )
        policy = policy.model_copy(update={"population": str(pop)})
    link = policy.image_linkage
    if link is not None and link.extractor is not None:
        policy = policy.model_copy(
            update={
                "image_linkage": link.model_copy(
                    update={"extractor": _model_file(path, link.extractor)}
                )
            }
        )
    return policy


def _model_file(path: Path, extractor: OnnxExtractor) -> OnnxExtractor:
    """The extractor with its model file resolved against the policy's folder and checked."""
    from slidegate.risk.onnx import file_sha256

    model = (path.parent / extractor.model).resolve()
    if not model.is_file():
        raise PolicyError(
            f"risk policy {path} names ONNX feature extractor {extractor.model!r}, but {model} "
            "does not exist; fix the path or remove 'extractor'"
        )
    if file_sha256(model) != extractor.sha256:
        raise PolicyError(
            f"risk policy {path}: ONNX feature extractor {extractor.model!r} does not have the "
            "sha256 the policy gives; put the intended model file in place or update 'sha256'"
        )
    return extractor.model_copy(update={"model": str(model)})
