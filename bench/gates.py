"""Correctness gates of the benchmark (a run that fails one does not count), also used by tests.

References are read with tifffile directly (not with slidegate's converter code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from slidegate.convert.shards import read_index

EMPTY = 2**64 - 1


def chunks_are_source_tiles(source: Path, out: Path, n_levels: int) -> int:
    """Every chunk payload of the first `n_levels` arrays equals the source tile at the same
    grid position once cleaned of its non-coding segments (slidegate.payload: OpenJPEG's COM,
    for one); zero-length tiles: missing chunks. Returns the number of tiles compared; raises
    AssertionError on the first difference."""
    from slidegate.payload import clean_j2k, clean_jpeg

    compared = 0
    with tifffile.TiffFile(source) as tif, open(source, "rb") as fh:
        pages = [lv.keyframe for lv in tif.series[0].levels][:n_levels]
        for i, page in enumerate(pages):
            meta = json.loads((out / str(i) / "zarr.json").read_text())
            _, ty, tx = meta["codecs"][0]["configuration"]["chunk_shape"]
            _, sy, sx = meta["chunk_grid"]["configuration"]["chunk_shape"]
            assert (ty, tx) == (page.tilelength, page.tilewidth), f"level {i}: chunk != tile"
            ky, kx = sy // ty, sx // tx
            gy, gx = -(-page.imagelength // ty), -(-page.imagewidth // tx)
            seen = 0
            for shard in sorted((out / str(i) / "c" / "0").glob("*/*")):
                syi, sxi = int(shard.parent.name), int(shard.name)
                data = shard.read_bytes()
                for k, (offset, nbytes) in enumerate(read_index(data, ky * kx)):
                    ty_i, tx_i = syi * ky + k // kx, sxi * kx + k % kx
                    if ty_i >= gy or tx_i >= gx:
                        assert offset == nbytes == EMPTY, f"level {i}: chunk outside the grid"
                        continue
                    t = ty_i * gx + tx_i
                    fh.seek(page.dataoffsets[t])
                    want = fh.read(page.databytecounts[t])
                    if not want:
                        assert offset == nbytes == EMPTY, f"level {i}: empty tile has a chunk"
                    else:
                        got = data[offset : offset + nbytes]
                        clean = clean_jpeg if int(page.compression) == 7 else clean_j2k
                        assert got == clean(want), f"level {i} tile {t}: bytes differ"
                    seen += 1
            assert seen == gy * gx, f"level {i}: {seen} of {gy * gx} tiles in the shards"
            compared += seen
    return compared


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _source_level0(source: Path) -> Any:
    return zarr.open_array(tifffile.imread(source, aszarr=True, level=0), mode="r")


def random_regions(
    source: Path,
    read_out: Any,
    shape: tuple[int, int],
    *,
    n: int = 100,
    size: int = 512,
    exact: bool,
    seed: int = 0,
) -> float:
    """Compare `n` random regions of level 0: `read_out(y, x, h, w) -> (h, w, s)`. Returns the
    worst PSNR (inf when all are identical); raises AssertionError when a gate fails."""
    src = _source_level0(source)
    rng = np.random.default_rng(seed)
    h, w = shape
    worst = float("inf")
    for _ in range(n):
        rh, rw = min(size, h), min(size, w)
        y, x = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
        want = np.asarray(src[y : y + rh, x : x + rw])
        got = read_out(y, x, rh, rw)
        assert got.shape == want.shape, "region shape differs"
        if exact:
            assert np.array_equal(got, want), f"region y={y} x={x} differs"
        else:
            worst = min(worst, psnr(got, want))
    if not exact:
        assert worst >= 40, f"PSNR {worst:.1f} dB < 40 dB"
    return worst


def zarr_reader(out: Path, level: int = 0) -> Any:
    arr = zarr.open_group(str(out), mode="r")[str(level)]
    return lambda y, x, h, w: np.asarray(arr[:, y : y + h, x : x + w]).transpose(1, 2, 0)  # type: ignore[index]


def vips_reader(out: Path) -> Any:
    """libvips output read back with libvips (tifffile misreads its YCbCr JPEG tiles)."""
    import pyvips

    img = pyvips.Image.tiffload(str(out), page=0)
    return lambda y, x, h, w: np.asarray(img.crop(x, y, w, h).numpy())


def ngff_ok(out: Path) -> list[str]:
    """Structural NGFF 0.5 check (no JSON-schema validator is installed)."""
    problems: list[str] = []
    group = zarr.open_group(str(out), mode="r")
    ome = group.attrs.get("ome")
    if not isinstance(ome, dict) or ome.get("version") != "0.5":
        return ["no ome/version 0.5"]
    (ms,) = ome["multiscales"]
    if [a["name"] for a in ms["axes"]] != ["c", "y", "x"]:
        problems.append("axes are not c, y, x")
    if [a["type"] for a in ms["axes"]] != ["channel", "space", "space"]:
        problems.append("axis types")
    base = None
    for d in ms["datasets"]:
        arr: Any = group[d["path"]]
        (t,) = d["coordinateTransformations"]
        if t["type"] != "scale" or len(t["scale"]) != 3 or arr.ndim != 3:
            problems.append(f"dataset {d['path']}: transform or rank")
            continue
        if base is None:
            base = (arr.shape, t["scale"])
        else:
            for ax in (1, 2):
                ratio = base[0][ax] / arr.shape[ax]
                if abs(t["scale"][ax] / base[1][ax] - ratio) > 1e-6 * ratio:
                    problems.append(f"dataset {d['path']}: scale does not match the shape")
    return problems
