"""Pixels the risk model and the ledger look at: the lowest pyramid level (features, perceptual
hash) and one level-0 tile (exact fingerprint), from a staged OME-Zarr or a source slide."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: lowest levels larger than this (either side) are read with a stride
MAX_SIDE = 2048
TILE = 512


def _rgb(arr: NDArray[np.generic]) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 for the risk model, whatever the channel count and bit depth. RGB stays
    as it is; any other count (grey, fluorescence, multiplex) becomes a brightfield-like
    projection: the brightest channel at each pixel, inverted when the background (the median)
    is dark, so tissue is dark on white as in a brightfield slide."""
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        top = float(a.max()) or 1.0
        a = (a.astype(np.float64) * (255.0 / top)).astype(np.uint8)
    return brightfield_rgb(a)


def brightfield_rgb(a: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """(H, W, 3) from an (H, W[, C]) uint8 image: RGB as it is; any other channel count the
    brightest channel at each pixel, inverted when the background (the median) is dark."""
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] != 3:
        a = a.max(axis=2, keepdims=True)
        if np.median(a) < 128:
            a = 255 - a
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def _open_group(path: Path | Any) -> Any:
    """A slidegate OME-Zarr by path, or an already open group (staging on S3) as it is."""
    import zarr

    if not isinstance(path, str | Path):
        return path
    from slidegate.convert import register

    register()  # tile pass-through outputs use imagecodecs' JPEG / JPEG 2000 codecs
    return zarr.open_group(str(path), mode="r")


def zarr_lowest_level(path: Path | Any) -> NDArray[np.uint8]:
    """The lowest-resolution level of an OME-Zarr written by slidegate, as (H, W, 3) uint8."""
    import zarr

    group = _open_group(path)
    names = sorted((k for k in group.array_keys() if k.isdigit()), key=int)
    arr = group[names[-1]]
    assert isinstance(arr, zarr.Array)
    step = max(1, -(-max(arr.shape[-2:]) // MAX_SIDE))
    data = np.asarray(arr[..., ::step, ::step])  # (c, y, x)
    return _rgb(np.moveaxis(data, 0, -1) if data.ndim == 3 else data)


def zarr_tile_hash(path: Path | Any) -> str:
    """sha256 of the decoded pixels of the central level-0 tile (independent of encoding)."""
    import zarr

    arr = _open_group(path)["0"]
    assert isinstance(arr, zarr.Array)
    h, w = arr.shape[-2:]
    y, x = max(0, h // 2 - TILE // 2), max(0, w // 2 - TILE // 2)
    tile = np.ascontiguousarray(np.asarray(arr[..., y : y + TILE, x : x + TILE]), dtype=np.uint8)
    return hashlib.sha256(tile.tobytes() + repr(tile.shape).encode()).hexdigest()


def source_lowest_level(path: Path) -> NDArray[np.uint8]:
    """The lowest pyramid level of a source slide (read-only), as (H, W, 3) uint8."""
    from slidegate.formats import open_reader, read_facts

    facts = read_facts(path, path.name)
    level = facts.levels[-1]
    with open_reader(path) as reader:
        data = reader.read(level, 0, 0, level.height, level.width)
    step = max(1, -(-max(data.shape[:2]) // MAX_SIDE))
    return _rgb(data[::step, ::step])


def _dct_matrix(n: int) -> NDArray[np.float64]:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n))
    m[0] /= np.sqrt(2.0)
    return np.asarray(m, np.float64)


def perceptual_hash(rgb: NDArray[np.uint8]) -> str:
    """DCT perceptual hash (63 bits, hex) of a thumbnail: grey 32x32 box-resized, the 8x8
    lowest frequencies without DC, each above/below their median. A re-encoded copy differs by
    0-2 bits, another section of the same block by ~8-20, another tissue by ~30."""
    from PIL import Image

    grey = Image.fromarray(rgb).convert("L").resize((32, 32), Image.Resampling.BOX)
    d = _dct_matrix(32)
    coeffs = d @ np.asarray(grey, np.float64) @ d.T
    low = coeffs[:8, :8].ravel()[1:]
    value = 0
    for bit in low > np.median(low):
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")
