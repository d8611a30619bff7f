"""Histology-like synthetic tissue images (numpy + PIL only, no noise-looking output).

`tissue_image` paints an H&E-like field: off-white glass background, one or two tissue regions
with a smooth irregular outline, pink eosin stroma with smooth colour variation and fibres, dark
purple nuclei in clusters, and a few pale lumens lined by nuclei. The tissue *outline* comes from
`shape_seed` (slides cut from the same block share it, like serial sections) while stain, fibres,
nuclei and lumens come from `seed`, so every slide looks different.

Reduced levels are derived by area-averaging (`downsample`) so all levels agree.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

RGB = NDArray[np.uint8]
F32 = NDArray[np.float32]

BACKGROUND = (242.0, 238.0, 240.0)
STROMA = (226.0, 146.0, 186.0)
STROMA_DARK = (196.0, 96.0, 152.0)
NUCLEUS = (72.0, 42.0, 118.0)
LUMEN = (248.0, 240.0, 244.0)


def smooth_field(rng: np.random.Generator, size: tuple[int, int], cells: int) -> F32:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bicubically."""
    h, w = size
    gh = max(2, round(cells * h / max(h, w)))
    gw = max(2, round(cells * w / max(h, w)))
    grid = rng.random((gh, gw), dtype=np.float32)
    img = Image.fromarray(grid, mode="F").resize((w, h), Image.Resampling.BICUBIC)
    out = np.asarray(img, dtype=np.float32)
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _tissue_mask(rng: np.random.Generator, size: tuple[int, int], perturb: float) -> F32:
    """Soft mask (0..1) of one or two tissue regions with irregular, smooth borders."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    envelope = np.zeros(size, np.float32)
    for _ in range(int(rng.integers(1, 3))):
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.25, 0.75) * w
        ry, rx = rng.uniform(0.22, 0.38) * h, rng.uniform(0.18, 0.32) * w
        envelope = np.maximum(envelope, np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)))
    outline = 0.6 * smooth_field(rng, size, 6) + 0.4 * smooth_field(rng, size, 14)
    score = envelope * (0.55 + 0.45 * outline)
    if perturb:
        score += perturb * (smooth_field(rng, size, 10) - 0.5)
    return np.clip((score - 0.30) * 30.0, 0.0, 1.0)


def _stroma(rng: np.random.Generator, size: tuple[int, int]) -> F32:
    """Eosin stroma: smooth tone variation plus anisotropic fibres, as float RGB."""
    h, w = size
    tone = smooth_field(rng, size, 8)[..., None]
    fh, fw = max(2, h // int(rng.integers(6, 14))), max(2, w // int(rng.integers(60, 120)))
    if rng.random() < 0.5:
        fh, fw = fw, fh
    fib_grid = rng.random((fh, fw), dtype=np.float32)
    fibres = np.asarray(
        Image.fromarray(fib_grid, mode="F").resize((w, h), Image.Resampling.BILINEAR),
        dtype=np.float32,
    )[..., None]
    shift = rng.uniform(-14, 14, size=3).astype(np.float32)
    base = np.asarray(STROMA, np.float32) + shift
    dark = np.asarray(STROMA_DARK, np.float32) + shift
    mix = np.clip(0.55 * tone + 0.45 * fibres, 0.0, 1.0)
    return base * (1.0 - mix) + dark * mix


def _nuclei_and_lumens(rng: np.random.Generator, mask: F32, scale: float) -> tuple[F32, F32]:
    """Return (nuclei alpha, lumen alpha) painted with PIL ellipses inside the tissue mask."""
    h, w = mask.shape
    nuc = Image.new("L", (w, h), 0)
    lum = Image.new("L", (w, h), 0)
    dn, dl = ImageDraw.Draw(nuc), ImageDraw.Draw(lum)
    inside = np.argwhere(mask > 0.9)
    if len(inside) == 0:
        return np.zeros(mask.shape, np.float32), np.zeros(mask.shape, np.float32)
    r_nuc = 4.5 * scale
    # lumens, each lined by a ring of nuclei
    for _ in range(int(rng.integers(3, 8))):
        cy, cx = inside[int(rng.integers(len(inside)))]
        ry, rx = rng.uniform(18, 70) * scale, rng.uniform(18, 70) * scale
        dl.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
        for a in np.linspace(0, 2 * np.pi, int(rng.integers(14, 30)), endpoint=False):
            ny, nx = cy + (ry + r_nuc * 1.6) * np.sin(a), cx + (rx + r_nuc * 1.6) * np.cos(a)
            _ellipse(dn, rng, float(ny), float(nx), r_nuc)
    # clustered nuclei: cluster centres in tissue, gaussian scatter around them
    density = len(inside) / (h * w)
    n_clusters = int(rng.integers(40, 90) * max(0.3, density) * (h * w) / 6.3e6 / scale**2) + 8
    for _ in range(n_clusters):
        cy, cx = inside[int(rng.integers(len(inside)))]
        spread = rng.uniform(15, 60) * scale
        count = int(rng.integers(30, 110))
        pts = rng.normal(0.0, spread, size=(count, 2)) + np.array([cy, cx])
        for py, px in pts:
            iy, ix = int(py), int(px)
            if 0 <= iy < h and 0 <= ix < w and mask[iy, ix] > 0.5:
                _ellipse(dn, rng, float(py), float(px), r_nuc)
    # scattered single nuclei
    for idx in rng.integers(len(inside), size=int(len(inside) / (900 * scale**2))):
        py, px = inside[int(idx)]
        _ellipse(dn, rng, float(py), float(px), r_nuc)
    nuc = nuc.filter(ImageFilter.GaussianBlur(0.8 * scale))
    lum = lum.filter(ImageFilter.GaussianBlur(2.0 * scale))
    return (
        np.asarray(nuc, np.float32) / 255.0,
        np.asarray(lum, np.float32) / 255.0 * mask,
    )


def _ellipse(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, y: float, x: float, r: float
) -> None:
    ry, rx = r * rng.uniform(0.6, 1.3), r * rng.uniform(0.6, 1.3)
    draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=int(rng.integers(170, 256)))


def tissue_image(
    seed: int, size: tuple[int, int], *, shape_seed: int | None = None, scale: float = 1.0
) -> RGB:
    """Return an H&E-like RGB image of `size` = (height, width), deterministic in the seeds.

    `scale` is the nucleus size in pixels relative to a 20x (0.5 um/px) scan.
    """
    h, w = size
    if h < 16 or w < 16:
        msg = "tissue_image needs at least 16x16 pixels"
        raise ValueError(msg)
    shape_rng = np.random.default_rng([shape_seed if shape_seed is not None else seed, 1])
    rng = np.random.default_rng([seed, 2])
    perturb = 0.0 if shape_seed is None else 0.08
    mask = _tissue_mask(shape_rng, size, 0.0)
    if perturb:
        mask = np.clip(mask + perturb * (smooth_field(rng, size, 10) - 0.5) * 4 * mask, 0, 1)
    img = _stroma(rng, size)
    nuclei, lumens = _nuclei_and_lumens(rng, mask, scale)
    _blend(img, lumens, np.asarray(LUMEN, np.float32))
    nuc_col = np.asarray(NUCLEUS, np.float32) + rng.uniform(-12, 12, size=3).astype(np.float32)
    _blend(img, nuclei * mask, nuc_col)
    bg = np.asarray(BACKGROUND, np.float32) + rng.uniform(-4, 4, size=3).astype(np.float32)
    _blend(img, 1.0 - mask, bg)
    img += rng.standard_normal((h, w, 1), dtype=np.float32) * 2.0
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


def _blend(img: F32, alpha: F32, colour: F32) -> None:
    """In place: img = img * (1 - alpha) + colour * alpha."""
    a = alpha[..., None]
    img -= (img - colour) * a


def downsample(img: RGB, factor: int) -> RGB:
    """Area-average `img` by an integer factor (edge rows/columns that do not fill a block drop)."""
    if factor == 1:
        return img
    h, w = img.shape[0] // factor, img.shape[1] // factor
    if h < 1 or w < 1:
        msg = f"image too small to downsample by {factor}"
        raise ValueError(msg)
    block = img[: h * factor, : w * factor].reshape(h, factor, w, factor, img.shape[2])
    return np.rint(block.mean(axis=(1, 3), dtype=np.float32)).astype(np.uint8)


def resize(img: RGB, size: tuple[int, int]) -> RGB:
    """Area-averaging resize to `size` = (height, width) for thumbnails and macro images."""
    pil = Image.fromarray(img).resize((size[1], size[0]), Image.Resampling.BOX)
    return np.asarray(pil, dtype=np.uint8)
