"""Pass-through JPEG chunks are self-contained baseline JPEG streams under the registered
Zarr v3 `jpeg` codec: the shared JPEGTables spliced in after SOI (the tile's own bytes after
it unchanged), an Adobe RGB marker for RGB-coded tiles; a stock decoder (Pillow, given the
chunk alone) produces tifffile's pixels, bit for bit. The audit proves each chunk against the
source tile with the tables spliced, and catches a chunk whose colour markers would make a
stock decoder change its colours. Inputs are crafted with imagecodecs + tifffile."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from slidegate.audit import verify_output
from slidegate.convert import ConvertOptions, write_ome_zarr
from slidegate.convert.shards import read_index, shard_bytes
from slidegate.deid import load_deid_policy, plan_deid
from slidegate.formats import read_facts
from slidegate.models import DeidPlan
from tests.receiver.aperio_like import image, write_aperio_like

ADOBE_RGB = b"\xff\xee\x00\x0eAdobe" + bytes([0, 100, 0, 0, 0, 0, 0])
JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
TILE = 128


def _plan(source: Path, policies_dir: Path) -> DeidPlan:
    facts = read_facts(source, source.name)
    policy = load_deid_policy(policies_dir / f"deid/{facts.format}.yaml")
    return plan_deid(facts, policy, "s-00000000000000c1")


def _convert(source: Path, policies_dir: Path, out: Path) -> DeidPlan:
    plan = _plan(source, policies_dir)
    write_ome_zarr(source, plan, out, ConvertOptions(chunk=128, shard=256))
    return plan


def _chunks(out: Path, grid: tuple[int, int]) -> dict[int, bytes]:
    """Tile index -> chunk bytes of level 0 (shards of 2 x 2 tiles)."""
    got = {}
    for t in range(grid[0] * grid[1]):
        r, c = divmod(t, grid[1])
        data = (out / "0" / "c" / "0" / str(r // 2) / str(c // 2)).read_bytes()
        offset, n = read_index(data, 4)[(r % 2) * 2 + c % 2]
        got[t] = data[int(offset) : int(offset) + int(n)]
    return got


def _source_tiles(source: Path) -> tuple[tifffile.TiffPage, list[bytes], bytes, np.ndarray]:
    with tifffile.TiffFile(source) as tif:
        page = tif.pages[0]
        assert isinstance(page, tifffile.TiffPage)
        fh = tif.filehandle
        tiles = []
        for off, n in zip(page.dataoffsets, page.databytecounts, strict=True):
            fh.seek(off)
            tiles.append(fh.read(n))
        return page, tiles, bytes(page.jpegtables), page.asarray()


@pytest.mark.parametrize("rgb", [True, False], ids=["rgb-coded", "ycbcr"])
def test_chunks_are_tiles_with_tables_spliced(rgb: bool, policies_dir: Path, tmp_path: Path):
    img = image(300, 400)
    source = write_aperio_like(tmp_path / "a.tif", img, tile=TILE, rgb=rgb)
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out)
    meta = json.loads((out / "0" / "zarr.json").read_text())
    inner = meta["codecs"][0]["configuration"]["codecs"]
    want_codec: dict[str, Any] = {"name": "jpeg"}
    if rgb:
        want_codec["configuration"] = {"encoded_color_space": "rgb"}
    assert inner == [{"name": "transpose", "configuration": {"order": [1, 2, 0]}}, want_codec]
    _, tiles, tables, pixels = _source_tiles(source)
    table_segments = tables[2:-2]  # DQT + DHT, as crafted
    assert b"\xff\xdb" in table_segments and b"\xff\xc4" in table_segments
    grid = (-(-300 // TILE), -(-400 // TILE))
    chunks = _chunks(out, grid)
    for t, tile in enumerate(tiles):
        head = b"\xff\xd8" + (ADOBE_RGB if rgb else b"") + table_segments
        assert chunks[t] == head + tile[2:], t  # entropy-coded data byte for byte
        r, c = divmod(t, grid[1])
        alone = np.asarray(Image.open(io.BytesIO(chunks[t])))  # no tables, no hint
        want = pixels[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
        assert np.array_equal(alone[: want.shape[0], : want.shape[1]], want), t
    arr: Any = zarr.open_group(str(out), mode="r")["0"]
    assert np.array_equal(np.asarray(arr[:]).transpose(1, 2, 0), pixels)
    assert verify_output(out, plan, source) == []
    if rgb:  # the hard case: without the Adobe marker a decoder guesses YCbCr
        bare = b"\xff\xd8" + table_segments + tiles[0][2:]
        guess = np.asarray(Image.open(io.BytesIO(bare)))
        assert np.abs(guess.astype(int) - pixels[:TILE, :TILE]).mean() > 20


def test_rgb_coded_tile_with_a_jfif_marker_is_not_passed_through(policies_dir: Path,
                                                                  tmp_path: Path):  # fmt: skip
    """A JFIF marker in one tile of an RGB-coded page: tifffile decodes it as RGB, a stock
    decoder as YCbCr. The level is re-encoded (lossless), its pixels still tifffile's."""
    img = image(300, 400)
    source = write_aperio_like(tmp_path / "a.tif", img, tile=TILE, extra={3: JFIF})
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out)
    meta = json.loads((out / "0" / "zarr.json").read_text())
    names = [c["name"] for c in meta["codecs"][0]["configuration"]["codecs"]]
    assert "jpeg" not in names and "blosc" in names
    arr: Any = zarr.open_group(str(out), mode="r")["0"]
    assert np.array_equal(np.asarray(arr[:]).transpose(1, 2, 0), _source_tiles(source)[3])
    assert verify_output(out, plan, source) == []


def _rewrite_chunk(out: Path, t: int, grid: tuple[int, int], new: bytes) -> None:
    chunks = _chunks(out, grid)
    r, c = divmod(t, grid[1])
    sy, sx = r // 2, c // 2
    payloads: list[bytes | None] = []
    for dy in range(2):
        for dx in range(2):
            k = (sy * 2 + dy) * grid[1] + sx * 2 + dx
            inside = sy * 2 + dy < grid[0] and sx * 2 + dx < grid[1]
            payloads.append((new if k == t else chunks[k]) if inside else None)
    data = shard_bytes(payloads)
    assert data is not None
    (out / "0" / "c" / "0" / str(sy) / str(sx)).write_bytes(data)


def test_audit_catches_a_chunk_without_its_tables_or_with_a_colour_marker(
    policies_dir: Path, tmp_path: Path
) -> None:
    img = image(300, 400)
    source = write_aperio_like(tmp_path / "a.tif", img, tile=TILE)
    good = tmp_path / "good.ome.zarr"
    plan = _convert(source, policies_dir, good)
    _, tiles, _, _ = _source_tiles(source)
    grid = (-(-300 // TILE), -(-400 // TILE))
    chunk = _chunks(good, grid)[5]
    cases = {
        "the source tile as it is (no tables)": tiles[5],
        "a JFIF marker after the prefix": chunk[:2] + JFIF + chunk[2:],
        "the Adobe marker removed": chunk[:2] + chunk[2 + len(ADOBE_RGB) :],
    }
    for what, new in cases.items():
        out = tmp_path / "bad.ome.zarr"
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(good, out)
        _rewrite_chunk(out, 5, grid, new)
        problems = verify_output(out, plan, source)
        assert problems and all(p.startswith("level 0:") for p in problems), what
