"""Image linkage: V_pi against a direct implementation; serial sections vs different tissues."""

from __future__ import annotations

import numpy as np
import pytest

from slidegate.risk.linkage import (
    chance_level,
    cosine,
    cosine_similarity,
    pi_max_attack,
    prior_risk,
    slide_features,
    v_pi,
)
from slidegate.synth.texture import tissue_image


def direct_v_pi(sim: list[list[float]], owners: list[int], n: int) -> float:
    """The paper's formula written out: V_pi = (1/n) sum_h max_{p in P_h} pi(p)(h), with
    pi(p)(h) = 1 when reference h is the most similar to probe p."""
    total = 0.0
    for h in range(n):
        probes = [p for p, o in enumerate(owners) if o == h]
        best = 0.0
        for p in probes:
            row = sim[p]
            pi = 1.0 if max(range(n), key=lambda r: row[r]) == h else 0.0
            best = max(best, pi)
        total += best
    return total / n


def test_v_pi_equals_the_formula_on_a_hand_built_example() -> None:
    # 3 references; probes: two of patient 0 (one matched), one of patient 1 (matched to 2),
    # one of patient 2 (matched)
    sim = [
        [0.9, 0.1, 0.2],  # patient 0 -> 0 (hit)
        [0.2, 0.8, 0.1],  # patient 0 -> 1 (miss)
        [0.1, 0.3, 0.7],  # patient 1 -> 2 (miss)
        [0.0, 0.2, 0.6],  # patient 2 -> 2 (hit)
    ]
    owners = [0, 0, 1, 2]
    value, hits = v_pi(np.array(sim), owners, 3)
    assert value == pytest.approx(direct_v_pi(sim, owners, 3)) == pytest.approx(2 / 3)
    assert hits.tolist() == [1.0, 0.0, 1.0]
    assert chance_level([2, 1, 1]) == pytest.approx(
        np.mean([1 - (2 / 3) ** 2, 1 - (2 / 3), 1 - (2 / 3)])
    )


def test_attack_on_hand_built_features_matches_the_direct_formula() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 8))
    feats, owner = {}, {}
    for h in range(5):
        for j in range(3):
            noise = 0.05 if h < 3 else 5.0  # patients 3, 4: slides unrelated to each other
            feats[f"s{h}{j}"] = centres[h] + rng.normal(scale=noise, size=8)
            owner[f"s{h}{j}"] = f"p{h}"
    result = pi_max_attack(feats, owner, draws=1, seed=3, similarity=cosine_similarity)
    # redo the single draw by hand: one reference per patient, index floor(u * count)
    slides = sorted(feats)
    matrix = np.stack([feats[s] for s in slides])
    u = np.random.default_rng(3).random(5)
    by = {h: [i for i, s in enumerate(slides) if owner[s] == f"p{h}"] for h in range(5)}
    refs = [by[h][int(u[h] * len(by[h]))] for h in range(5)]
    probes = [i for i in range(len(slides)) if i not in refs]
    sim = cosine(matrix[probes], matrix[refs]).tolist()
    owners = [int(owner[slides[i]][1]) for i in probes]
    assert result.v_pi == pytest.approx(direct_v_pi(sim, owners, 5))
    assert result.chance == pytest.approx(1 - (1 - 1 / 5) ** 2)


def cohort_features(serial: bool, patients: int = 10, slides: int = 3) -> tuple[dict, dict]:  # type: ignore[type-arg]
    feats, owner = {}, {}
    for h in range(patients):
        for j in range(slides):
            shape = h if serial else 1000 * h + j + 7  # serial: one block outline per patient
            img = tissue_image(1000 * h + j, (192, 288), shape_seed=shape, scale=0.25)
            feats[f"s{h}-{j}"] = slide_features(img)
            owner[f"s{h}-{j}"] = f"p{h}"
    return feats, owner


def test_serial_sections_link_well_above_chance_different_tissues_near_chance() -> None:
    serial = pi_max_attack(*cohort_features(True), draws=20, seed=0)
    different = pi_max_attack(*cohort_features(False), draws=20, seed=0)
    print(
        f"\nserial sections: V_pi {serial.v_pi:.3f} +/- {serial.v_pi_std:.3f} "
        f"(chance {serial.chance:.3f}); different tissues: V_pi {different.v_pi:.3f} +/- "
        f"{different.v_pi_std:.3f} (chance {different.chance:.3f})"
    )
    assert serial.chance == different.chance == pytest.approx(1 - 0.9**2)
    assert serial.v_pi > serial.chance + 0.4
    assert abs(different.v_pi - different.chance) < 0.15


def test_prior_risk_grows_with_slides_and_relation() -> None:
    one = prior_risk([("b1", "x1")], 0.6, 0.15, 0.05)
    three = prior_risk([("b1", "x1")] * 3, 0.6, 0.15, 0.05)
    assert one == pytest.approx(0.6)
    assert three == pytest.approx(1 - 0.4**3)
    mixed = prior_risk([("b1", "x1"), ("b2", "x1"), ("b3", "x2")], 0.6, 0.15, 0.05)
    assert mixed == pytest.approx(1 - 0.4 * 0.85 * 0.95)
    assert prior_risk([], 0.6, 0.15, 0.05) == 0.0
