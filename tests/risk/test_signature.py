"""Each slide's task signs its output (features + hashes) so the cohort stage holds no image and
no slide's channel layout can sink the cohort (a 2-channel slide next to RGB once raised
`all input arrays must have the same shape` in the linkage attack)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from slidegate.models import SlideReport
from slidegate.risk.images import _rgb
from slidegate.risk.linkage import linkability, slide_features, tissue_mask
from slidegate.risk.pipeline import signatures

from .conftest import write_spec


def _blob(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.kron(rng.random((h // 8, w // 8)), np.ones((8, 8)))[:h, :w] > 0.6


@pytest.mark.parametrize(
    ("channels", "dtype"),
    [(0, np.uint8), (1, np.uint16), (2, np.uint16), (3, np.uint8), (7, np.uint16)],
)
def test_any_channel_count_gives_the_same_feature_shape(channels: int, dtype: type) -> None:
    mask = _blob(256, 320, 1)
    top = np.iinfo(dtype).max
    if channels == 3:  # brightfield: tissue dark on glass
        img = np.where(mask[..., None], np.array([150, 60, 140], dtype), np.array(240, dtype))
    else:  # fluorescence: tissue bright on a dark background
        shape = mask.shape if channels == 0 else (*mask.shape, channels)
        lit = mask if channels == 0 else mask[..., None]
        img = np.where(lit, top // 2, top // 100).astype(dtype) * np.ones(shape, dtype)
    rgb = _rgb(img)
    assert rgb.shape == (256, 320, 3) and rgb.dtype == np.uint8
    # the projection keeps the tissue where it is, whatever the channel layout
    assert (tissue_mask(rgb) == mask).mean() > 0.99
    reference = slide_features(_rgb(np.where(mask[..., None], 120, 240).astype(np.uint8)))
    assert slide_features(rgb).shape == reference.shape


def _write_zarr(path: Path, image_cyx: np.ndarray) -> Path:
    group = zarr.open_group(str(path), mode="w")
    for i, step in enumerate((1, 2)):
        data = image_cyx[:, ::step, ::step]
        arr = group.create_array(str(i), shape=data.shape, dtype=data.dtype, chunks=data.shape)
        arr[...] = data
    return path


def test_a_two_channel_slide_and_an_rgb_slide_are_scored_together(tmp_path: Path) -> None:
    mask = _blob(512, 512, 2)
    two = np.stack([np.where(mask, 40000, 200), np.where(mask, 9000, 50)]).astype(np.uint16)
    rgb = np.where(mask, 120, 235).astype(np.uint8)[None].repeat(3, axis=0)
    reports = {
        name: SlideReport(
            slide_id=name,
            pseudonym=name,
            stage="audit",
            status="ok",
            output_path=str(_write_zarr(tmp_path / f"{name}.zarr", img)),
        )
        for name, img in {"fluo": two, "he": rgb, "he2": rgb[:, ::-1]}.items()
    }
    signed, unreadable = signatures(reports)
    assert not unreadable and set(signed) == {"fluo", "he", "he2"}
    features = {s: np.asarray(sig.features) for s, sig in signed.items()}
    scores = linkability(features, {"fluo": "p1", "he": "p2", "he2": "p2"})
    assert set(scores) == {"fluo", "he", "he2"} and all(np.isfinite(v) for v in scores.values())


def test_an_unreadable_output_is_withheld_alone(tmp_path: Path) -> None:
    good = _write_zarr(tmp_path / "good.zarr", np.full((3, 64, 64), 200, np.uint8))
    broken = tmp_path / "broken.zarr"
    broken.mkdir()
    (broken / "zarr.json").write_text("{not json")
    reports = {
        s: SlideReport(slide_id=s, pseudonym=s, stage="audit", status="ok", output_path=str(p))
        for s, p in {"good": good, "broken": broken}.items()
    }
    signed, unreadable = signatures(reports)
    assert set(signed) == {"good"}
    assert set(unreadable) == {"broken"} and "unreadable" in unreadable["broken"]
    assert str(tmp_path) not in unreadable["broken"]


def test_the_cohort_stage_reads_no_image(tmp_path: Path) -> None:
    from slidegate.settings import Settings
    from slidegate.stages.cohort import decide_cohort
    from slidegate.stages.context import prepare_release
    from slidegate.stages.slide import audit, deidentify, inventory
    from slidegate.synth import generate_cohort

    cohort = generate_cohort(tmp_path / "c", slides=4, patients=2, seed=3, base_size=(512, 512))
    ctx = prepare_release(
        write_spec(cohort.root, "sig", "controlled-access"), Settings(work_dir=tmp_path / "w")
    )
    reports = [audit(ctx, deidentify(ctx, inventory(ctx, s))) for s in ctx.slides]
    ok = [r for r in reports if r.status == "ok"]
    assert ok and all(r.signature is not None and len(r.signature.features) > 500 for r in ok)
    before = decide_cohort(ctx, reports)
    for r in ok:  # leave each output's group metadata, remove every level's pixels
        assert r.output_path is not None
        for level in Path(r.output_path).iterdir():
            if level.is_dir() and level.name.isdigit():
                shutil.rmtree(level)
    after = decide_cohort(ctx, reports)
    assert [(s.pseudonym, s.status) for s in after.slides] == [
        (s.pseudonym, s.status) for s in before.slides
    ]
    assert after.figures == before.figures
