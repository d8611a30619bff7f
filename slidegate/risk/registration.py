"""Placement-invariant linkage: tissue is registered before it is compared.

A slide's tissue lies anywhere on the glass, turned and often flipped, and serial sections of one
block are stretched a little and stained a little differently. The descriptor takes the pose out
before anything is compared:

- translation: the polar grid is centred on the tissue mask's centroid;
- scale: its radii are in units of the mask's RMS radius (so a modest scale change moves nothing);
- stain: the density channel is the optical density divided by its median over the tissue;
- rotation and flips: a rotation is a circular shift along the angle axis, a flip reverses it;
  pairs are compared by phase correlation over every shift, mirrored or not (the max of the
  normalised cross-correlation), from the rings' low angular harmonics.

`slide_descriptor` is what a slide's worker computes (`RINGS x CHANNELS x BAND` complex
harmonics, a few kilobytes); `registration_similarity` scores every pair of a cohort at once,
vectorised in row blocks (5,000 slides in seconds, memory n x n float32 plus one block).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]

#: rings of the polar grid, from the centroid to RMAX RMS radii
RINGS = 12
RMAX = 2.2
#: angles sampled on each ring, and the angular harmonics kept (the descriptor's band)
ANGLES = 64
BAND = 12
#: channels: tissue mask, stain-normalised optical density; and their weights
WEIGHTS = (0.5, 0.5)
#: shifts at which the band-limited correlation is evaluated (360 / SHIFTS degrees apart)
SHIFTS = 48
#: the blur before sampling, as a share of the RMS radius
BLUR = 1 / 12
FEATURE_SIZE = RINGS * len(WEIGHTS) * BAND * 2


def tissue_mask(rgb: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Tissue = not glass: saturated or darker than the bright background."""
    img = rgb.astype(np.float32)
    sat = img.max(axis=2) - img.min(axis=2)
    gray = img.mean(axis=2)
    return np.asarray((sat > 20.0) | (gray < 200.0))


def _box(img: NDArray[np.float32], k: int) -> NDArray[np.float32]:
    """Box blur of odd width 2k+1 (separable, cumulative sums), edges clamped."""
    if k < 1:
        return img
    out = img
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (k + 1, k)
        c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis, dtype=np.float64)
        hi = np.take(c, np.arange(2 * k + 1, c.shape[axis]), axis=axis)
        lo = np.take(c, np.arange(0, c.shape[axis] - 2 * k - 1), axis=axis)
        out = ((hi - lo) / (2 * k + 1)).astype(np.float32)
    return out


def bilinear(img: NDArray[np.float32], ys: F32, xs: F32) -> F32:
    """`img` sampled at (ys, xs) (any shape), 0 outside."""
    h, w = img.shape
    y0, x0 = np.floor(ys), np.floor(xs)
    fy, fx = ys - y0, xs - x0
    out = np.zeros(ys.shape, np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = (y0 + dy).astype(np.int64), (x0 + dx).astype(np.int64)
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            out += np.where(ok, img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0) * wy * wx
    return out


def pose(mask: NDArray[np.bool_]) -> tuple[float, float, float]:
    """Centroid (y, x) and RMS radius of the tissue, in pixels (the middle if none)."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 4:
        h, w = mask.shape
        return h / 2, w / 2, max(1.0, min(h, w) / 4)
    cy, cx = float(ys.mean()), float(xs.mean())
    rms = float(np.sqrt(((ys - cy) ** 2 + (xs - cx) ** 2).mean()))
    return cy, cx, max(rms, 1.0)


def channels(rgb: NDArray[np.uint8]) -> tuple[NDArray[np.bool_], list[F32]]:
    """Tissue mask, and the channels sampled: mask, optical density over its tissue median."""
    mask = tissue_mask(rgb)
    od = -np.log((rgb.astype(np.float32) + 1.0) / 256.0).mean(axis=2)
    med = float(np.median(od[mask])) if mask.any() else 1.0
    density = np.where(mask, od / max(med, 1e-3), 0.0).astype(np.float32)
    return mask, [mask.astype(np.float32), density]


def polar_samples(rgb: NDArray[np.uint8]) -> F32:
    """(channels, RINGS, ANGLES) samples around the tissue's centroid, radii in RMS radii."""
    mask, chans = channels(rgb)
    cy, cx, rms = pose(mask)
    k = round(BLUR * rms)
    radii = (np.arange(RINGS, dtype=np.float32) + 0.5) / RINGS * RMAX * rms
    theta = np.arange(ANGLES, dtype=np.float32) * (2 * np.pi / ANGLES)
    ys = cy + radii[:, None] * np.sin(theta)[None, :]
    xs = cx + radii[:, None] * np.cos(theta)[None, :]
    return np.stack([bilinear(_box(c, k), ys, xs) for c in chans])


def descriptor_from_samples(samples: F32) -> F32:
    """The band-limited angular harmonics of each ring, each channel zero-mean with norm
    sqrt(weight): flat (real parts, imaginary parts), FEATURE_SIZE float32."""
    spec = np.fft.rfft(samples.astype(np.float64), axis=2)[:, :, :BAND]
    parts = []
    for c, weight in enumerate(WEIGHTS):
        s = spec[c].copy()
        s[:, 0] -= s[:, 0].mean()  # the channel's mean over the whole grid is 0
        # Parseval: energy of the band-limited signal; harmonics k >= 1 count twice
        energy = (np.abs(s[:, 0]) ** 2).sum() + 2 * (np.abs(s[:, 1:]) ** 2).sum()
        s *= np.sqrt(weight * ANGLES / energy) if energy > 1e-12 else 0.0
        parts.append(s)
    full = np.concatenate(parts)  # (channels * RINGS, BAND)
    return np.concatenate([full.real.ravel(), full.imag.ravel()]).astype(np.float32)


def slide_descriptor(rgb: NDArray[np.uint8]) -> F32:
    """The placement-invariant descriptor of one slide's lowest-level RGB image (H, W, 3)."""
    return descriptor_from_samples(polar_samples(rgb))


def _spectra(features: NDArray[np.floating]) -> tuple[F32, F32]:
    """(n, FEATURE_SIZE) -> real and imaginary parts, each (BAND, n, rings x channels)."""
    n = features.shape[0]
    if features.shape[1] != FEATURE_SIZE:
        raise ValueError(
            f"registration descriptor has {features.shape[1]} values, expected {FEATURE_SIZE}"
        )
    half = FEATURE_SIZE // 2
    re = np.asarray(features[:, :half], np.float32).reshape(n, -1, BAND).transpose(2, 0, 1)
    im = np.asarray(features[:, half:], np.float32).reshape(n, -1, BAND).transpose(2, 0, 1)
    return np.ascontiguousarray(re), np.ascontiguousarray(im)


def _shift_basis() -> F32:
    """(2 x BAND, SHIFTS): Re(X e^{i phase}) = X_re cos - X_im sin at every shift, with the
    inverse transform's harmonic weights (1 for k = 0, 2 above) folded in."""
    k = np.arange(BAND)[:, None]
    s = np.arange(SHIFTS)[None, :]
    w = np.where(k == 0, 1.0, 2.0) / ANGLES
    phase = 2 * np.pi * k * s / SHIFTS
    return np.concatenate([w * np.cos(phase), -w * np.sin(phase)]).astype(np.float32)


def _harmonic_weights() -> F32:
    return (np.where(np.arange(BAND) == 0, 1.0, 2.0) / ANGLES).astype(np.float32)


def magnitudes(re: F32, im: F32) -> F32:
    """(n, BAND x m): the weighted harmonic magnitudes sqrt(w_k) |A_mk| of each slide; their
    dot product sum_{k,m} w_k |A_mk| |B_mk| bounds the registration score of a pair from above
    over every rotation and flip (|sum_k w_k X_k e^{iks}| <= sum_k w_k |X_k|), and is itself
    rotation- and flip-invariant."""
    mag = np.sqrt(re**2 + im**2) * np.sqrt(_harmonic_weights())[:, None, None]  # (BAND, n, m)
    return np.ascontiguousarray(mag.transpose(1, 0, 2).reshape(re.shape[1], -1))


def _exact(re: F32, im: F32, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> F32:
    """Registration score of each pair (rows[p], cols[p]); `re`, `im`: (n, BAND, m)."""
    a_re, a_im, g_re, g_im = re[rows], im[rows], re[cols], im[cols]  # (p, BAND, m) each
    rr = (a_re * g_re).sum(axis=2)
    ii = (a_im * g_im).sum(axis=2)
    ir = (a_im * g_re).sum(axis=2)
    ri = (a_re * g_im).sum(axis=2)
    # same handedness: sum_m A conj(B); mirrored: sum_m A B; each as (re | im) x k
    z = np.concatenate([rr + ii, ir - ri, rr - ii, ir + ri], axis=1)  # (p, 4 BAND)
    corr = z.reshape(-1, 2 * BAND) @ _shift_basis()  # one product for both orientations
    return np.asarray(corr.reshape(len(rows), -1).max(axis=1), np.float32)


def _pairs(re: F32, im: F32, out: F32, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> None:
    for start in range(0, len(rows), 4096):  # small chunks: the gathers stay in cache
        r, c = rows[start : start + 4096], cols[start : start + 4096]
        exact = _exact(re, im, r, c)
        out[r, c] = exact
        out[c, r] = exact


def registration_similarity(features: NDArray[np.floating], candidates: int = 192) -> F32:
    """(n, n) float32: for each pair, the highest normalised cross-correlation of their polar
    descriptors over every rotation, mirrored or not (1 = same tissue in any placement).

    Exact for every pair up to `candidates` slides. Above, exact for each slide's `candidates`
    pairs of highest magnitude bound (and their mirror pairs); a pair left out is set below
    every exact score (bound - 2, the bound's order kept): its true score is at most its bound,
    which is at most that of every pair computed for the row."""
    n = features.shape[0]
    if n == 0:
        return np.zeros((0, 0), np.float32)
    re, im = _spectra(features)  # (BAND, n, m)
    re_s = np.ascontiguousarray(re.transpose(1, 0, 2))  # (n, BAND, m): one slide contiguous
    im_s = np.ascontiguousarray(im.transpose(1, 0, 2))
    if n <= candidates:
        out = np.zeros((n, n), np.float32)
        rows, cols = np.triu_indices(n)
        _pairs(re_s, im_s, out, rows.astype(np.int64), cols.astype(np.int64))
        return out
    mags = magnitudes(re, im)
    out = np.empty((n, n), np.float32)
    found = []
    for start in range(0, n, 256):  # row blocks: the bound, each row's cut
        bound = mags[start : start + 256] @ mags.T
        cut = np.partition(bound, n - candidates, axis=1)[:, n - candidates]
        out[start : start + 256] = bound - 2.0
        r, c = np.nonzero(bound >= cut[:, None])
        found.append((r + start, c))
    for r, c in found:  # then the exact scores (a pair may be found from either end)
        _pairs(re_s, im_s, out, r.astype(np.int64), c.astype(np.int64))
    return out
