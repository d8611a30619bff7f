"""Image-linkage risk (Holub et al. 2023): can a reference image of a patient's block be matched
to the released slides?

- `slide_features`: a slide's placement-invariant descriptor (slidegate.risk.registration), or
  the embeddings of a steward's ONNX model (slidegate.risk.onnx); computed by the slide's task.
- `Pairwise`: every pair of slides scored once (the registration score, or the plain cosine of
  embeddings), vectorised; every draw and every cap of the model indexes into it.
- `pi_max_attack`: each patient's reference is one of their slides drawn at random, the rest are
  probes; each probe is assigned to its most similar reference;
  `V_pi = (1/n) sum_h max_{p in P_h} pi(p)(h)`, averaged over several draws, with its spread and
  the chance level `1 - (1 - 1/n)^{|P_h|}` averaged over patients. A patient with one slide has
  no probe: the attack cannot measure them (`unmeasured`), the model scores them by the prior.
- `prior_risk`: `1 - prod (1 - p_rel)` over a patient's released slides, the relation (same block,
  other block, other specimen) taken against the attacker's best reference block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from slidegate.risk.registration import registration_similarity, slide_descriptor, tissue_mask

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
#: (n, d) feature matrix -> (n, n) similarity
Similarity = Callable[[NDArray[np.floating]], F32]

__all__ = ["slide_features", "tissue_mask"]


def slide_features(rgb: NDArray[np.uint8]) -> F32:
    """The built-in feature vector of one slide from its lowest-level RGB image (H, W, 3)."""
    return slide_descriptor(rgb)


def cosine(a: NDArray[np.floating], b: NDArray[np.floating]) -> F64:
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return np.asarray((a / np.where(na > 0, na, 1.0)) @ (b / np.where(nb > 0, nb, 1.0)).T)


def cosine_similarity(features: NDArray[np.floating]) -> F32:
    """Plain cosine of every pair (no per-cohort z-scoring)."""
    f = np.asarray(features, np.float32)
    return np.asarray(cosine(f, f), np.float32)


@dataclass(frozen=True)
class Pairwise:
    """Every pair of a cohort's slides scored once."""

    slides: tuple[str, ...]
    index: dict[str, int]
    matrix: F32

    @classmethod
    def of(
        cls, features: Mapping[str, NDArray[np.floating]], similarity: Similarity | None = None
    ) -> Pairwise:
        slides = tuple(sorted(features))
        score = similarity or registration_similarity
        if not slides:
            return cls((), {}, np.zeros((0, 0), np.float32))
        matrix = score(np.stack([np.asarray(features[s], np.float32) for s in slides]))
        return cls(slides, {s: i for i, s in enumerate(slides)}, matrix)

    def linkability(self, owner: Mapping[str, str]) -> dict[str, float]:
        """Per slide: its highest similarity to another slide of the same patient (how well a
        reference of that patient would match it); 0 for a patient's only slide."""
        own = np.array([owner[s] for s in self.slides])
        same = own[:, None] == own[None, :]
        np.fill_diagonal(same, False)
        best = np.where(same, self.matrix, -np.inf).max(axis=1, initial=-np.inf)
        pairs = zip(self.slides, best.tolist(), strict=True)
        return {s: float(b) if np.isfinite(b) else 0.0 for s, b in pairs}


def v_pi(similarity: F64, probe_owner: Sequence[int], n: int) -> tuple[float, F64]:
    """One draw: `similarity[p, h]` of probe p to reference h, `probe_owner[p]` = h of p.
    Returns V_pi and the per-patient hit (max_{p in P_h} pi(p)(h), 0 or 1)."""
    hits = np.zeros(n)
    if similarity.shape[0]:
        owners = np.asarray(probe_owner, np.int64)
        assigned = np.asarray(similarity).argmax(axis=1)
        hits[owners[assigned == owners]] = 1.0
    return float(hits.mean()) if n else 0.0, hits


def chance_level(probes_per_patient: Sequence[int]) -> float:
    """Expected V_pi when probes are assigned to references at random."""
    n = len(probes_per_patient)
    if n == 0:
        return 0.0
    return float(np.mean([1 - (1 - 1 / n) ** m for m in probes_per_patient]))


@dataclass(frozen=True)
class AttackResult:
    v_pi: float  # mean over draws
    v_pi_std: float
    chance: float
    draws: int
    n_patients: int  # patients with at least one slide (references)
    per_patient: dict[str, float]  # share of draws in which the patient was matched
    #: patients with one slide: no probe, the attack says nothing about them
    unmeasured: frozenset[str] = frozenset()


def pi_max_attack(
    features: Mapping[str, NDArray[np.floating]] | Pairwise,
    owner: Mapping[str, str],
    draws: int,
    seed: int,
    *,
    slides: Iterable[str] | None = None,
    similarity: Similarity | None = None,
) -> AttackResult:
    """Run the pi_max attack on `slides` (default: all) of `features` (slide -> vector, or the
    cohort's precomputed `Pairwise`); `owner` maps a slide to its patient."""
    pairs = features if isinstance(features, Pairwise) else Pairwise.of(features, similarity)
    chosen = pairs.slides if slides is None else sorted(set(slides) & set(pairs.index))
    if not chosen:
        return AttackResult(0.0, 0.0, 0.0, 0, 0, {})
    patients = sorted({owner[s] for s in chosen})
    pidx = {p: i for i, p in enumerate(patients)}
    # slides grouped by patient: rows[starts[h] : starts[h] + counts[h]] are patient h's
    order = sorted(chosen, key=lambda s: (pidx[owner[s]], s))
    rows = np.array([pairs.index[s] for s in order], np.int64)
    own = np.array([pidx[owner[s]] for s in order], np.int64)
    n = len(patients)
    counts = np.bincount(own, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    values, total = [], np.zeros(n)
    for _ in range(max(1, draws)):
        refs = starts + np.minimum((rng.random(n) * counts).astype(np.int64), counts - 1)
        is_ref = np.zeros(len(order), bool)
        is_ref[refs] = True
        probes = np.flatnonzero(~is_ref)
        sim = pairs.matrix[np.ix_(rows[probes], rows[refs])]
        value, hits = v_pi(sim, own[probes].tolist(), n)
        values.append(value)
        total += hits
    chance = chance_level((counts - 1).tolist())
    per = {p: float(total[pidx[p]] / len(values)) for p in patients}
    single = frozenset(p for p in patients if counts[pidx[p]] < 2)
    return AttackResult(
        float(np.mean(values)), float(np.std(values)), chance, len(values), n, per, single
    )


def linkability(
    features: Mapping[str, NDArray[np.floating]],
    owner: Mapping[str, str],
    similarity: Similarity | None = None,
) -> dict[str, float]:
    """Per slide: its highest similarity to another slide of the same patient."""
    return Pairwise.of(features, similarity).linkability(owner)


def prior_risk(
    slides: Sequence[tuple[str, str]], p_same_block: float, p_other_block: float, p_other: float
) -> float:
    """`slides`: (block, specimen) of each released slide of one patient. The attacker's
    reference comes from the block that gives the highest risk."""
    if not slides:
        return 0.0
    best = 0.0
    for ref_block, ref_specimen in set(slides):
        keep = 1.0
        for block, specimen in slides:
            if block == ref_block:
                p = p_same_block
            elif specimen == ref_specimen:
                p = p_other_block
            else:
                p = p_other
            keep *= 1.0 - p
        best = max(best, 1.0 - keep)
    return best
