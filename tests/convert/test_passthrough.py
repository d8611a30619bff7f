"""Tile pass-through, portable modes and the 2x pyramid, checked against tifffile's decode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr

from bench.inputs import write_slide
from slidegate.convert import ConvertOptions, write_ome_zarr
from slidegate.convert.pyramid import downsample2, level_shapes
from slidegate.convert.shards import read_index, shard_bytes
from slidegate.deid import load_deid_policy, plan_deid
from slidegate.formats import read_facts
from slidegate.models import DeidPlan
from slidegate.payload import clean_j2k, clean_jpeg

PSEUDO = "s-0123456789abcdef"
SVS = "aperio-svs/CMU-1-Small-Region.svs"


def _plan(source: Path, policies_dir: Path) -> DeidPlan:
    facts = read_facts(source, source.name)
    return plan_deid(facts, load_deid_policy(policies_dir / f"deid/{facts.format}.yaml"), PSEUDO)


def _convert(source: Path, policies_dir: Path, out: Path, **opts: Any) -> DeidPlan:
    plan = _plan(source, policies_dir)
    write_ome_zarr(source, plan, out, ConvertOptions(**opts))
    return plan


def _levels(source: Path) -> list[tifffile.TiffPage]:
    """The pyramid pages as tifffile sees them (SVS: base + reduced levels)."""
    with tifffile.TiffFile(source) as tif:
        return [lv.keyframe for lv in tif.series[0].levels]


def _cleaned(tile: bytes) -> bytes:
    return clean_jpeg(tile) if tile[:2] == b"\xff\xd8" else clean_j2k(tile)


ADOBE_RGB = b"\xff\xee\x00\x0eAdobe" + bytes([0, 100, 0, 0, 0, 0, 0])


def _table_segments(tables: bytes) -> bytes:
    """The DQT / DHT / DAC / DRI segments of a TIFF JPEGTables stream (SOI ... EOI), read
    here with a plain length walk."""
    assert tables[:2] == b"\xff\xd8" and tables[-2:] == b"\xff\xd9"
    out, pos = [], 2
    while pos < len(tables) - 2:
        marker, n = tables[pos + 1], int.from_bytes(tables[pos + 2 : pos + 4], "big")
        if marker in (0xC4, 0xCC, 0xDB, 0xDD):
            out.append(tables[pos : pos + 2 + n])
        pos += 2 + n
    return b"".join(out)


def expected_chunk(page: tifffile.TiffPage, tile: bytes) -> bytes:
    """A source tile as its chunk: cleaned, and for JPEG the page's JPEGTables spliced in
    after SOI (an Adobe RGB marker first when the page's tiles are RGB-coded, as Aperio's)."""
    cleaned = _cleaned(tile)
    if int(page.compression) != 7:
        return cleaned
    rgb = int(page.photometric) == 2 and not page.is_jfif
    head = b"\xff\xd8" + (ADOBE_RGB if rgb else b"")
    if page.jpegtables is not None:
        head += _table_segments(bytes(page.jpegtables))
    return head + cleaned[2:]


def assert_stock_decoder_reads_chunks(source: Path, out: Path, level: int, every: int = 7) -> int:
    """Chunks decoded by Pillow alone (no tables, no colour-space hint) equal tifffile's decode
    of the source tile: the chunks are self-contained JPEG streams."""
    import io

    from PIL import Image

    checked = 0
    with tifffile.TiffFile(source) as tif:
        page = tif.series[0].levels[level].keyframe
        meta = json.loads((out / str(level) / "zarr.json").read_text())
        _, ty, tx = meta["codecs"][0]["configuration"]["chunk_shape"]
        _, sy, sx = meta["chunk_grid"]["configuration"]["chunk_shape"]
        ky, kx = sy // ty, sx // tx
        gx = -(-page.imagewidth // tx)
        full = tif.series[0].levels[level].asarray()
        for t in range(0, len(page.dataoffsets), every):
            if not page.databytecounts[t]:
                continue
            r, c = divmod(t, gx)
            data = (out / str(level) / "c" / "0" / str(r // ky) / str(c // kx)).read_bytes()
            offset, nbytes = read_index(data, ky * kx)[(r % ky) * kx + c % kx]
            got = np.asarray(Image.open(io.BytesIO(data[offset : offset + nbytes])))
            want = full[r * ty : (r + 1) * ty, c * tx : (c + 1) * tx]
            got = got.reshape(ty, tx, -1)[: want.shape[0], : want.shape[1]]
            assert np.array_equal(got.reshape(want.shape), want), f"tile {t}"
            checked += 1
    return checked


def assert_chunks_are_source_tiles(source: Path, out: Path, n_levels: int) -> int:
    """Every chunk payload in every shard equals the source tile at the same grid position,
    cleaned of its non-coding segments (OpenJPEG's COM, for one); zero-length tiles are missing
    chunks. Returns the number of tiles compared."""
    compared = 0
    with tifffile.TiffFile(source) as tif, open(source, "rb") as fh:
        pages = [lv.keyframe for lv in tif.series[0].levels][:n_levels]
        for i, page in enumerate(pages):
            meta = json.loads((out / str(i) / "zarr.json").read_text())
            sharding = meta["codecs"][0]["configuration"]
            _, ty, tx = sharding["chunk_shape"]
            _, sy, sx = meta["chunk_grid"]["configuration"]["chunk_shape"]
            assert (ty, tx) == (page.tilelength, page.tilewidth)
            ky, kx = sy // ty, sx // tx
            gy, gx = -(-page.imagelength // ty), -(-page.imagewidth // tx)
            for shard in sorted((out / str(i) / "c" / "0").glob("*/*")):
                syi, sxi = int(shard.parent.name), int(shard.name)
                data = shard.read_bytes()
                index = read_index(data, ky * kx)
                for k, (offset, nbytes) in enumerate(index):
                    ty_i, tx_i = syi * ky + k // kx, sxi * kx + k % kx
                    if ty_i >= gy or tx_i >= gx:
                        assert offset == nbytes == 2**64 - 1
                        continue
                    t = ty_i * gx + tx_i
                    fh.seek(page.dataoffsets[t])
                    want = fh.read(page.databytecounts[t])
                    if not want:
                        assert offset == nbytes == 2**64 - 1
                    else:
                        assert data[offset : offset + nbytes] == expected_chunk(page, want)
                    compared += 1
    return compared


def assert_pixels_equal_tifffile(source: Path, out: Path, n_levels: int) -> None:
    group = zarr.open_group(str(out), mode="r")
    with tifffile.TiffFile(source) as tif:
        for i, level in enumerate(tif.series[0].levels[:n_levels]):
            got = np.asarray(group[str(i)][:]).transpose(1, 2, 0)
            assert np.array_equal(got, level.asarray()), f"level {i}"


def test_real_svs_pass_through(real_slides: Path, policies_dir: Path, tmp_path: Path) -> None:
    source = real_slides / SVS
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out)
    meta = json.loads((out / "0" / "zarr.json").read_text())
    inner = meta["codecs"][0]["configuration"]["codecs"]
    assert inner == [
        {"name": "transpose", "configuration": {"order": [1, 2, 0]}},
        {"name": "jpeg", "configuration": {"encoded_color_space": "rgb"}},  # Aperio: RGB-coded
    ]
    n = assert_chunks_are_source_tiles(source, out, len(plan.levels))
    assert n == len(_levels(source)[0].dataoffsets)
    assert_pixels_equal_tifffile(source, out, len(plan.levels))
    for i in range(len(plan.levels)):
        assert assert_stock_decoder_reads_chunks(source, out, i) > 0


def test_zero_length_tiles_and_multi_shard(policies_dir: Path, tmp_path: Path) -> None:
    source = write_slide(tmp_path / "z.svs", (1000, 1300), tile=128, zero_tiles=(1, 12, 40))
    with tifffile.TiffFile(source) as tif:
        assert sum(1 for c in tif.pages[0].databytecounts if c == 0) == 3
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out, shard=512)
    arr: Any = zarr.open_array(str(out / "0"), mode="r")
    assert arr.chunks == (3, 128, 128) and arr.shards == (3, 512, 512)
    assert assert_chunks_are_source_tiles(source, out, len(plan.levels)) > 3
    assert_pixels_equal_tifffile(source, out, len(plan.levels))
    assert not np.asarray(arr[:, 0:128, 128:256]).any()  # zero-length tile: fill value


def test_jpeg2000_pass_through(policies_dir: Path, tmp_path: Path) -> None:
    source = write_slide(tmp_path / "j.svs", (700, 900), tile=256, compression=33003)
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out)
    meta = json.loads((out / "0" / "zarr.json").read_text())
    assert meta["codecs"][0]["configuration"]["codecs"][1]["name"] == "numcodecs.imagecodecs_jpeg2k"
    assert assert_chunks_are_source_tiles(source, out, len(plan.levels)) > 0
    assert_pixels_equal_tifffile(source, out, len(plan.levels))


PORTABLE_READER = """
import sys, numpy, zarr
g = zarr.open_group(sys.argv[1], mode="r")
ms = g.attrs["ome"]["multiscales"][0]
for d in ms["datasets"]:
    a = g[d["path"]]
    numpy.save(sys.argv[2] + "/" + d["path"] + ".npy", a[:])
assert "imagecodecs" not in sys.modules, "imagecodecs was imported"
assert not any(m.startswith("slidegate") for m in sys.modules)
print(len(ms["datasets"]))
"""


def test_lossless_output_is_portable(real_slides: Path, policies_dir: Path, tmp_path: Path):
    """Plain zarr + numcodecs, in a process that never imports imagecodecs or slidegate."""
    source = real_slides / SVS
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out, mode="lossless")
    res = subprocess.run(
        [sys.executable, "-c", PORTABLE_READER, str(out), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout.strip()) == len(plan.levels)
    expect = tifffile.imread(source)
    assert np.array_equal(np.load(tmp_path / "0.npy").transpose(1, 2, 0), expect)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_jpeg_mode(policies_dir: Path, tmp_path: Path) -> None:
    source = write_slide(tmp_path / "s.svs", (1100, 1500), tile=256)
    out = tmp_path / "o.ome.zarr"
    _convert(source, policies_dir, out, mode="jpeg", quality=95, chunk=256, shard=512)
    arr: Any = zarr.open_array(str(out / "0"), mode="r")
    assert arr.chunks == (3, 256, 256)
    assert _psnr(np.asarray(arr[:]).transpose(1, 2, 0), tifffile.imread(source)) >= 40


@pytest.mark.parametrize("mode", ["passthrough", "lossless"])
def test_2x_pyramid(mode: str, policies_dir: Path, tmp_path: Path) -> None:
    source = write_slide(tmp_path / "s.svs", (1500, 2100), tile=256)
    out = tmp_path / "o.ome.zarr"
    _convert(source, policies_dir, out, mode=mode, pyramid="2x", chunk=128, shard=512)
    group = zarr.open_group(str(out), mode="r")
    shapes = level_shapes(1500, 2100, 128)
    assert [s[0] for s in shapes] == [1500, 750, 375, 188, 94, 47]
    ms = group.attrs["ome"]["multiscales"][0]  # type: ignore[index]
    assert [d["path"] for d in ms["datasets"]] == [str(i) for i in range(len(shapes))]
    expect = tifffile.imread(source)
    for i, (h, w) in enumerate(shapes):
        got = np.asarray(group[str(i)][:]).transpose(1, 2, 0)  # type: ignore[index]
        assert got.shape == (h, w, 3)
        assert np.array_equal(got, expect), f"level {i}"
        expect = downsample2(expect)
    scale = ms["datasets"][1]["coordinateTransformations"][0]["scale"]
    assert scale[1] == pytest.approx(
        2 * ms["datasets"][0]["coordinateTransformations"][0]["scale"][1]
    )


def test_downsample2_area_average() -> None:
    a = np.array([[[0], [2], [9]], [[4], [6], [9]], [[1], [1], [1]]], dtype=np.uint8)
    assert downsample2(a)[..., 0].tolist() == [[3, 9], [1, 1]]


def test_shard_bytes_read_by_zarr(tmp_path: Path) -> None:
    """A shard assembled here (raw 'bytes' chunks, one missing) reads back with zarr 3."""
    arr = zarr.create_array(
        str(tmp_path / "a"), shape=(4, 6), chunks=(2, 2), shards=(4, 6), dtype="uint8",
        compressors=None, fill_value=7,
    )  # fmt: skip
    payloads: list[bytes | None] = [bytes([k] * 4) for k in range(6)]
    payloads[4] = None
    data = shard_bytes(payloads)
    assert data is not None
    (tmp_path / "a" / "c" / "0").mkdir(parents=True)
    (tmp_path / "a" / "c" / "0" / "0").write_bytes(data)
    got = np.asarray(arr[:])
    assert got[0, 0] == 0 and got[0, 5] == 2 and got[3, 0] == 3 and got[2, 2] == 7
    assert shard_bytes([None, None]) is None


DICOM = "dicom-wsi/cmu-1-small-region-wsi2dcm"


def test_real_dicom_frames_pass_through(real_slides: Path, policies_dir: Path, tmp_path: Path):
    """Chunk payloads = the encapsulated frames as pydicom extracts them; pixels read back =
    pydicom's decode of the source, bit for bit, in the same colour conversion.

    The frames are JFIF (YCbCr) JPEG. pydicom decodes them with Pillow (libjpeg-turbo) to
    YCbCr and converts to RGB itself in floating point; zarr's imagecodecs codec lets
    libjpeg-turbo convert with its fixed-point tables, so the two RGB results differ by <= 1.
    No pydicom option makes it use libjpeg's conversion (the Pillow plugin always asks for
    YCbCr; the pylibjpeg plugin uses another libjpeg, up to 7 off). The honest comparison is
    pydicom's raw decode (`raw=True`, the YBR samples libjpeg-turbo produced) converted with
    libjpeg's own integer YCbCr->RGB arithmetic (`_libjpeg_rgb`): equal to the zarr read."""
    import imagecodecs
    import pydicom
    from pydicom.encaps import generate_frames
    from pydicom.pixels import pixel_array

    source = real_slides / DICOM
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out)
    assert plan.format == "dicom"
    group = zarr.open_group(str(out), mode="r")
    for i, name in ((0, "level-0-frames-0-30.dcm"), (1, "level-1-frames-0-9.dcm")):
        ds = pydicom.dcmread(source / name)
        frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
        rows, cols = int(ds.Rows), int(ds.Columns)
        meta = json.loads((out / str(i) / "zarr.json").read_text())
        _, sy, sx = meta["chunk_grid"]["configuration"]["chunk_shape"]
        ky, kx = sy // rows, sx // cols
        across = -(-int(ds.TotalPixelMatrixColumns) // cols)
        for k, frame in enumerate(frames):  # TILED_FULL: row-major frames
            r, c = divmod(k, across)
            data = (out / str(i) / "c" / "0" / str(r // ky) / str(c // kx)).read_bytes()
            offset, nbytes = read_index(data, ky * kx)[(r % ky) * kx + c % kx]
            chunk = data[offset : offset + nbytes]
            assert chunk == clean_jpeg(frame), f"level {i} frame {k}"  # an odd frame's pad
        arr: Any = group[str(i)]
        got = np.asarray(arr[:]).transpose(1, 2, 0)
        h, w = got.shape[:2]
        full = np.zeros((-(-h // rows) * rows, across * cols, 3), np.uint8)
        ref, ref_float = np.zeros_like(full), np.zeros_like(full)
        px_raw = pixel_array(str(source / name), raw=True)
        px, px_float = _libjpeg_rgb(px_raw), pixel_array(str(source / name))
        for k, frame in enumerate(frames):
            r, c = divmod(k, across)
            full[r * rows : (r + 1) * rows, c * cols : (c + 1) * cols] = imagecodecs.jpeg8_decode(
                frame
            )
            ref[r * rows : (r + 1) * rows, c * cols : (c + 1) * cols] = px[k]
            ref_float[r * rows : (r + 1) * rows, c * cols : (c + 1) * cols] = px_float[k]
        assert np.array_equal(got, full[:h, :w]), f"level {i}"
        assert np.array_equal(got, ref[:h, :w]), f"level {i}: differs from pydicom's decode"
        # pydicom's default RGB (its own float conversion) is within 1: the documented reason
        assert np.abs(got.astype(int) - ref_float[:h, :w]).max() <= 1


def _libjpeg_rgb(ybr: np.ndarray) -> np.ndarray:
    """JFIF YCbCr -> RGB exactly as libjpeg's jdcolor.c does it (16-bit fixed point, tables
    rounded half up, arithmetic right shift), written out here independently of any decoder."""
    bits, half = 16, 1 << 15

    def fix(v: float) -> int:
        return int(v * (1 << bits) + 0.5)

    y = ybr[..., 0].astype(np.int64)
    cb = ybr[..., 1].astype(np.int64) - 128
    cr = ybr[..., 2].astype(np.int64) - 128
    r = y + ((fix(1.40200) * cr + half) >> bits)
    g = y + ((-fix(0.34414) * cb - fix(0.71414) * cr + half) >> bits)
    b = y + ((fix(1.77200) * cb + half) >> bits)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def _com(data: bytes, text: bytes) -> bytes:
    """Insert a JPEG COM segment after SOI (decoders ignore it)."""
    return data[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + data[2:]


def test_tiles_with_metadata_segments_are_cleaned(policies_dir: Path, tmp_path: Path) -> None:
    """A COM segment inside a tile would be published unseen: it is removed, and the tile
    still passes through (the rest of its bytes unchanged, the pixels those of the source)."""
    import imagecodecs

    from slidegate.payload import PayloadError, check_j2k, check_jpeg

    img = np.random.default_rng(3).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    secret = b"CANARY-COM-0f3a9c"
    plain, tiles = [], []
    for y in range(0, 300, 128):
        for x in range(0, 400, 128):
            block = np.zeros((128, 128, 3), np.uint8)
            part = img[y : y + 128, x : x + 128]
            block[: part.shape[0], : part.shape[1]] = part
            plain.append(bytes(imagecodecs.jpeg8_encode(block, level=90)))
            tiles.append(_com(plain[-1], secret))
    source = tmp_path / "com.tif"
    with tifffile.TiffWriter(source) as w:
        w.write(iter(tiles), shape=img.shape, dtype=np.uint8, tile=(128, 128), compression=7,
                photometric="rgb", metadata=None)  # fmt: skip
    out = tmp_path / "o.ome.zarr"
    _convert(source, policies_dir, out)
    meta = json.loads((out / "0" / "zarr.json").read_text())
    names = [c["name"] for c in meta["codecs"][0]["configuration"]["codecs"]]
    assert "jpeg" in names  # passed through, cleaned
    assert not any(secret in p.read_bytes() for p in out.rglob("*") if p.is_file())
    shard = (out / "0" / "c" / "0" / "0" / "0").read_bytes()
    assert plain[0] in shard and plain[-1] in shard
    assert_pixels_equal_tifffile(source, out, 1)
    with pytest.raises(PayloadError):
        check_jpeg(tiles[0])
    check_jpeg(bytes(imagecodecs.jpeg8_encode(img, level=90)))  # plain JFIF passes
    check_j2k(clean_j2k(bytes(imagecodecs.jpeg2k_encode(img, level=40, codecformat="j2k"))))
