"""The placement-invariant linkage attack on synthetic serial-section cohorts (tests/risk/
serial_sections.py: a 3-D block cut at depth, deformed, stain-shifted, then shifted, turned by
any angle, mirrored and scaled on the glass), against the grid features it replaces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from slidegate.risk.linkage import (
    cosine_similarity,
    pi_max_attack,
    slide_features,
)
from slidegate.risk.registration import FEATURE_SIZE, registration_similarity

from .serial_sections import block, cohort, section

N = 50  # patients, 3 slides each: 2 probes per patient, chance 1 - (1 - 1/50)^2 = 0.0396


def grid_features(rgb: np.ndarray) -> np.ndarray:
    """The replaced features, as a baseline: the tissue mask on a 24x24 grid of the glass, z-scored
    over the cohort (the attack the issue measured at 0.088 under placement changes)."""
    mask = (rgb.max(axis=2).astype(int) - rgb.min(axis=2) > 20) | (rgb.mean(axis=2) < 200)
    h, w = mask.shape
    return (
        mask[: h // 24 * 24, : w // 24 * 24].reshape(24, h // 24, 24, w // 24).mean((1, 3)).ravel()
    )


def zscored_cosine(features: np.ndarray) -> np.ndarray:
    std = features.std(axis=0)
    z = (features - features.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)
    return cosine_similarity(z)


@pytest.fixture(scope="module")
def serial() -> tuple[dict[str, np.ndarray], dict[str, str]]:
    return cohort(N, 3, serial=True, seed=1)


@pytest.fixture(scope="module")
def unrelated() -> tuple[dict[str, np.ndarray], dict[str, str]]:
    return cohort(N, 3, serial=False, seed=2)


def test_one_section_in_any_placement_scores_as_itself() -> None:
    vol = block(5)
    img = section(vol, 10, seed=0)
    again = [section(vol, 10, seed=s) for s in (1, 2, 3, 4)]  # other placement, stain, warp
    other = [section(block(b), 10, seed=0) for b in (6, 7, 8, 9)]
    feats = np.stack([slide_features(x) for x in [img, *again, *other]])
    assert feats.shape == (9, FEATURE_SIZE) and feats.dtype == np.float32
    assert feats.nbytes // 9 <= 4096  # a few kilobytes per slide
    sim = registration_similarity(feats)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-4)
    np.testing.assert_allclose(sim, sim.T, atol=1e-4)
    same, diff = sim[0, 1:5], sim[0, 5:]
    print(f"\nsame section re-placed: {np.round(same, 3)}; other blocks: {np.round(diff, 3)}")
    assert same.min() > 0.9
    assert same.min() > diff.max()
    # an exact mirror image and an exact 90 degree turn of the same pixels: the same tissue
    turned = np.stack(
        [slide_features(np.ascontiguousarray(x)) for x in (img[:, ::-1], np.rot90(img))]
    )
    assert registration_similarity(np.concatenate([feats[:1], turned]))[0, 1:].min() > 0.97


def test_serial_sections_link_in_any_placement(
    serial: tuple[dict[str, np.ndarray], dict[str, str]],
    unrelated: tuple[dict[str, np.ndarray], dict[str, str]],
) -> None:
    images, owner = serial
    feats = {s: slide_features(img) for s, img in images.items()}
    result = pi_max_attack(feats, owner, draws=20, seed=0)
    other_images, other_owner = unrelated
    other = pi_max_attack(
        {s: slide_features(img) for s, img in other_images.items()}, other_owner, 20, 0
    )
    grid = {s: grid_features(img) for s, img in images.items()}
    baseline = pi_max_attack(grid, owner, 20, 0, similarity=zscored_cosine)
    print(
        f"\nserial sections, n={N}: V_pi {result.v_pi:.3f} +/- {result.v_pi_std:.3f} "
        f"(chance {result.chance:.4f}); unrelated tissues: V_pi {other.v_pi:.3f} +/- "
        f"{other.v_pi_std:.3f}; the replaced 24x24 grid, z-scored cosine: V_pi "
        f"{baseline.v_pi:.3f}"
    )
    assert result.n_patients == N and result.chance == pytest.approx(1 - (1 - 1 / N) ** 2)
    assert result.v_pi >= 0.5
    assert other.v_pi <= 2 * other.chance
    # the old features do not survive placement: the new attack is what measures the risk
    assert baseline.v_pi < 0.3 < result.v_pi
    # every serial patient is matched in most draws; none is unmeasured (3 slides each)
    assert np.median(list(result.per_patient.values())) >= 0.5 and not result.unmeasured


def test_a_single_slide_patient_is_scored_by_the_prior_never_zero(policies_dir) -> None:  # type: ignore[no-untyped-def]
    from slidegate.profile import load_policies
    from slidegate.risk.model import assess_cohort
    from slidegate.risk.qiset import column_roles
    from slidegate.risk.report import risk_markdown

    images, owner = cohort(8, 3, serial=True, seed=4)
    # patient p000 keeps only one slide: the attack has no probe for them
    images = {s: im for s, im in images.items() if not (owner[s] == "p000" and s[-1] != "0")}
    from slidegate.pseudonym import Pseudonymizer

    ps = Pseudonymizer(b"k" * 32)
    slide_ps = {s: ps("s", s) for s in images}
    patient_ps = {p: ps("p", p) for p in set(owner.values())}
    rows = [
        {
            "slide": slide_ps[s],
            "patient": patient_ps[owner[s]],
            "block": ps("b", owner[s]),
            "specimen": ps("x", owner[s]),
            "age": "40-49",
            "sex": "F",
            "diagnosis": "C18.7",
            "site": "colon",
            "collection_year": "2019",
        }
        for s in images
    ]
    feats = {slide_ps[s]: slide_features(im) for s, im in images.items()}
    pol = load_policies(policies_dir, "controlled-access")
    qis = column_roles(pol.metadata, pol.risk).quasi_identifiers
    for estimate in ("empirical", "max"):
        link = pol.risk.image_linkage
        assert link is not None
        risk_pol = pol.risk.model_copy(
            update={"image_linkage": link.model_copy(update={"estimate": estimate})}
        )
        result = assess_cohort(
            pd.DataFrame(rows),
            risk_pol,
            pol.profile.risk_limits,
            pol.hierarchies,
            quasi_identifiers=qis,
            features=feats,
        )
        by = {p.patient: p for p in result.patients}
        single = by[patient_ps["p000"]]
        assert single.slides == 1 and single.r_img_estimate == "prior"
        assert single.r_img_prior == pytest.approx(link.priors.same_block)
        assert link.priors.same_block > 0
        assert single.risk > 0 and "one released slide" in single.reason
        others = [by[patient_ps[p]] for p in sorted(patient_ps) if p != "p000"]
        # serial sections are matched (rate ~1 > prior 0.6): the attack decided for them
        assert all(p.r_img_estimate == "empirical" and p.r_img_empirical > 0.6 for p in others)
        assert "r_img from" in risk_markdown(result)


def _patterns(n: int, seed: int) -> np.ndarray:
    """Descriptors of n polar sample grids: n // 3 smooth random patterns, each seen three times
    turned by any angle, mirrored or not, with noise."""
    from slidegate.risk.registration import ANGLES, RINGS, descriptor_from_samples

    rng = np.random.default_rng(seed)
    k = np.arange(ANGLES // 2 + 1)
    out = []
    for i in range(n):
        if i % 3 == 0:
            spec = rng.normal(size=(2, RINGS, len(k))) + 1j * rng.normal(size=(2, RINGS, len(k)))
            base = np.fft.irfft(spec * np.exp(-k / 3.0), n=ANGLES, axis=2)
        s = np.roll(base + rng.normal(scale=base.std() * 0.8, size=base.shape), rng.integers(64), 2)
        out.append(descriptor_from_samples(s[:, :, ::-1] if rng.random() < 0.5 else s))
    return np.stack(out)


def test_the_pruned_score_keeps_every_rows_best_match_and_the_bound_holds() -> None:
    from slidegate.risk.registration import _spectra, magnitudes

    feats = _patterns(300, seed=3)
    full = registration_similarity(feats, candidates=300)  # every pair exact
    pruned = registration_similarity(feats, candidates=24)
    re, im = _spectra(feats)
    mags = magnitudes(re, im)
    assert (full <= mags @ mags.T + 1e-4).all()  # the bound is an upper bound
    exact = pruned > -1.0 - 1e-4  # entries computed exactly
    np.testing.assert_allclose(pruned[exact], full[exact], atol=1e-5)
    assert exact.sum(axis=1).min() >= 24
    np.fill_diagonal(full, -9)
    np.fill_diagonal(pruned, -9)
    # each slide's best match over the whole cohort is the same
    assert (pruned.argmax(axis=1) == full.argmax(axis=1)).all()
    # and the turned, mirrored, noisy views of one pattern find each other
    assert (full.argmax(axis=1) // 3 == np.arange(300) // 3).mean() > 0.9
