"""Synthetic serial-section cohorts for the linkage tests, built here with numpy + scipy only
(not slidegate.synth): each patient's block is a 3-D tissue volume (smoothed random fields,
thresholded inside a random blob envelope), cut at nearby depths; each section is elastically
deformed, stain-shifted, then put on the glass shifted, turned by any angle, mirrored or not and
scaled a little, as a lab places sections in practice."""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

SIDE = 112  # lateral size of a block's volume
DEPTH = 40  # voxels along the cutting axis
GLASS = (288, 352)  # the slide's lowest level (H, W)


def _field(rng: np.random.Generator, sigma: tuple[float, float, float], depth: int) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.normal(size=(depth, SIDE, SIDE)), sigma, mode="wrap")
    return (f - f.mean()) / f.std()


def block(seed: int, depth: int = DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """A block: tissue indicator and stain density volumes (depth, SIDE, SIDE)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE - 0.5
    a, b = rng.uniform(0.22, 0.38), rng.uniform(0.12, 0.3)
    t = rng.uniform(0, np.pi)
    u = (xx * np.cos(t) + yy * np.sin(t)) / a
    v = (-xx * np.sin(t) + yy * np.cos(t)) / b
    envelope = 1.2 - (u**2 + v**2)  # > 0 inside the block's outline
    shape = _field(rng, (6.0, 7.0, 7.0), depth) + 2.2 * envelope[None]
    density = _field(rng, (5.0, 3.0, 3.0), depth)
    return shape > 0.9, density


def section(vol: tuple[np.ndarray, np.ndarray], depth: int, seed: int) -> np.ndarray:
    """Cut at `depth`, deform, stain, place on the glass: an (H, W, 3) uint8 brightfield."""
    rng = np.random.default_rng(seed)
    tissue, density = vol[0][depth].astype(np.float64), vol[1][depth]
    # elastic deformation: a smooth displacement field of a few pixels
    grid = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    disp = [ndimage.gaussian_filter(rng.normal(size=(SIDE, SIDE)), 12) for _ in range(2)]
    disp = [2.5 * d / (np.abs(d).max() + 1e-9) for d in disp]
    coords = [grid[0] + disp[0], grid[1] + disp[1]]
    tissue = ndimage.map_coordinates(tissue, coords, order=1)
    density = ndimage.map_coordinates(density, coords, order=1)
    # placement: any rotation, mirrored or not, scale 0.9-1.1, anywhere on the glass
    angle = rng.uniform(0, 2 * np.pi)
    scale = rng.uniform(0.9, 1.1) * 1.6  # glass pixels per volume voxel
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    h, w = GLASS
    margin = SIDE * scale * 0.5
    cy = rng.uniform(margin, h - margin) if h > 2 * margin else h / 2
    cx = rng.uniform(margin, w - margin) if w > 2 * margin else w / 2
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    dy, dx = (gy - cy) / scale, (gx - cx) / scale
    c, s = np.cos(angle), np.sin(angle)
    sy = c * dy - s * dx + SIDE / 2
    sx = mirror * (s * dy + c * dx) + SIDE / 2
    on = ndimage.map_coordinates(tissue, [sy, sx], order=1, cval=0.0) > 0.5
    dens = ndimage.map_coordinates(density, [sy, sx], order=1, cval=0.0)
    # stain: H&E-like optical densities, the strength and hue shifted per slide
    od = np.where(on, 0.55 + 0.25 * np.tanh(dens), 0.0) * rng.uniform(0.8, 1.25)
    stain = np.array([0.65, 0.95, 0.45]) + rng.uniform(-0.1, 0.1, 3)
    rgb = 245.0 * np.exp(-od[..., None] * stain[None, None, :] * 1.6)
    rgb += rng.normal(0, 2.0, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)  # shared by the test modules; callers do not modify it
def cohort(
    patients: int, slides: int, serial: bool, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """slide -> image, slide -> patient. serial: each patient's slides are sections of one block
    a few voxels apart; otherwise every slide comes from a block of its own."""
    images, owner = {}, {}
    rng = np.random.default_rng(seed)
    for h in range(patients):
        vol = block(seed * 100_003 + h) if serial else None
        start = int(rng.integers(4, DEPTH - 4 - 2 * slides))
        for j in range(slides):
            name, placed = f"s{h:03d}-{j}", seed * 1_000_003 + 31 * h + j
            if vol is not None:
                images[name] = section(vol, start + 2 * j, placed)
            else:  # a block of its own, only as deep as one cut needs
                v = block(seed * 100_003 + 7919 * (h + 1) + j, depth=8)
                images[name] = section(v, 4, placed)
            owner[name] = f"p{h:03d}"
    return images, owner
