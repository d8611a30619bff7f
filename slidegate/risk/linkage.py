"""Image-linkage risk (Holub et al. 2023): can a reference image of a patient's block be matched
to the released slides?

- `slide_features`: a whole-slide feature vector from the lowest pyramid level (numpy only):
  tissue mask shape on a fixed grid, mask moments, colour statistics of the tissue.
- `pi_max_attack`: each patient's reference is one of their slides drawn at random, the rest are
  probes; each probe is assigned to its most similar reference (cosine similarity);
  `V_pi = (1/n) sum_h max_{p in P_h} pi(p)(h)`, averaged over several draws, with its spread and
  the chance level `1 - (1 - 1/n)^{|P_h|}` averaged over patients.
- `prior_risk`: `1 - prod (1 - p_rel)` over a patient's released slides, the relation (same block,
  other block, other specimen) taken against the attacker's best reference block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]

#: mask grid for the shape part of the feature vector
GRID = 24


def tissue_mask(rgb: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Tissue = not glass: saturated or darker than the bright background."""
    img = rgb.astype(np.float32)
    sat = img.max(axis=2) - img.min(axis=2)
    gray = img.mean(axis=2)
    return (sat > 20.0) | (gray < 200.0)


def _grid(mask: NDArray[np.bool_], size: int) -> F64:
    h, w = mask.shape
    ys = (np.arange(size + 1) * h) // size
    xs = (np.arange(size + 1) * w) // size
    out = np.zeros((size, size), np.float64)
    for i in range(size):
        for j in range(size):
            cell = mask[ys[i] : max(ys[i + 1], ys[i] + 1), xs[j] : max(xs[j + 1], xs[j] + 1)]
            out[i, j] = float(cell.mean()) if cell.size else 0.0
    return out.ravel()


def _moments(mask: NDArray[np.bool_]) -> F64:
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return np.zeros(6)
    y, x = ys / h, xs / w
    cy, cx = y.mean(), x.mean()
    myy, mxx, mxy = ((y - cy) ** 2).mean(), ((x - cx) ** 2).mean(), ((y - cy) * (x - cx)).mean()
    return np.array([len(ys) / mask.size, cy, cx, myy, mxx, mxy])


def _colour(rgb: NDArray[np.uint8], mask: NDArray[np.bool_]) -> F64:
    px = rgb[mask].astype(np.float64) if mask.any() else rgb.reshape(-1, 3).astype(np.float64)
    return np.concatenate([px.mean(axis=0), px.std(axis=0)]) / 255.0


def slide_features(rgb: NDArray[np.uint8]) -> F64:
    """Feature vector of one slide from its lowest-level RGB image (H, W, 3)."""
    mask = tissue_mask(rgb)
    return np.concatenate([_grid(mask, GRID), _moments(mask), _colour(rgb, mask)])


def standardise(features: F64) -> F64:
    """Z-score each column over the cohort and weight the three parts equally."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    z = (features - mean) / np.where(std > 1e-12, std, 1.0)
    parts = (
        slice(0, GRID * GRID),
        slice(GRID * GRID, GRID * GRID + 6),
        slice(GRID * GRID + 6, None),
    )
    for part in parts:
        width = z[:, part].shape[1]
        if width:
            z[:, part] /= np.sqrt(width)
    return np.asarray(z, np.float64)


def cosine(a: F64, b: F64) -> F64:
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return np.asarray((a / np.where(na > 0, na, 1.0)) @ (b / np.where(nb > 0, nb, 1.0)).T)


def v_pi(similarity: F64, probe_owner: Sequence[int], n: int) -> tuple[float, F64]:
    """One draw: `similarity[p, h]` of probe p to reference h, `probe_owner[p]` = h of p.
    Returns V_pi and the per-patient hit (max_{p in P_h} pi(p)(h), 0 or 1)."""
    hits = np.zeros(n)
    if similarity.shape[0]:
        assigned = similarity.argmax(axis=1)
        for p, owner in enumerate(probe_owner):
            if assigned[p] == owner:
                hits[owner] = 1.0
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


def pi_max_attack(
    features: Mapping[str, F64], owner: Mapping[str, str], draws: int, seed: int
) -> AttackResult:
    """Run the pi_max attack on the slides in `features` (slide -> vector); `owner` maps a
    slide to its patient."""
    slides = sorted(features)
    patients = sorted({owner[s] for s in slides})
    if not slides:
        return AttackResult(0.0, 0.0, 0.0, 0, 0, {})
    matrix = standardise(np.stack([features[s] for s in slides]))
    index = {p: i for i, p in enumerate(patients)}
    by_patient: dict[int, list[int]] = {}
    for i, s in enumerate(slides):
        by_patient.setdefault(index[owner[s]], []).append(i)
    rng = np.random.default_rng(seed)
    n = len(patients)
    values, total = [], np.zeros(n)
    for _ in range(max(1, draws)):
        refs = [int(rng.choice(by_patient[h])) for h in range(n)]
        probes = [i for i in range(len(slides)) if i not in set(refs)]
        probe_owner = [index[owner[slides[i]]] for i in probes]
        sim = cosine(matrix[probes], matrix[refs]) if probes else np.zeros((0, n))
        value, hits = v_pi(sim, probe_owner, n)
        values.append(value)
        total += hits
    chance = chance_level([len(by_patient[h]) - 1 for h in range(n)])
    per = {p: float(total[index[p]] / len(values)) for p in patients}
    return AttackResult(float(np.mean(values)), float(np.std(values)), chance, len(values), n, per)


def linkability(features: Mapping[str, F64], owner: Mapping[str, str]) -> dict[str, float]:
    """Per slide: its highest cosine similarity to another slide of the same patient (how well a
    reference of that patient would match it); 0 for a patient's only slide."""
    slides = sorted(features)
    if len(slides) < 2:
        return {s: 0.0 for s in slides}
    sim = cosine(*(2 * [standardise(np.stack([features[s] for s in slides]))]))
    out = {}
    for i, s in enumerate(slides):
        same = [j for j, t in enumerate(slides) if j != i and owner[t] == owner[s]]
        out[s] = float(max(sim[i, j] for j in same)) if same else 0.0
    return out


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
