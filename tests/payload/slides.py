"""Slides with text hidden in their compressed payloads, written with tifffile / pydicom.

Each writer returns the secret strings it planted. The pixels a decoder returns are those of
the clean tiles: the hiding places are invisible to a pixel comparison.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import tifffile
from pydicom.encaps import encapsulate, generate_frames

from tests.payload import crafts

APERIO = "Aperio Image Library v12.0.15"
TILE = 128


def _blocks(h: int, w: int, seed: int) -> list[np.ndarray]:
    img = crafts.image(h, w, seed)
    out = []
    for y in range(0, h, TILE):
        for x in range(0, w, TILE):
            block = np.zeros((TILE, TILE, 3), np.uint8)
            part = img[y : y + TILE, x : x + TILE]
            block[: part.shape[0], : part.shape[1]] = part
            out.append(block)
    return out


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of the segments before the first scan."""
    out, pos = [], 2
    while data[pos + 1] != 0xDA:
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append((data[pos + 1], pos, end))
        pos = end
    return out


def abbreviate(tile: bytes) -> tuple[bytes, bytes]:
    """(tables stream, tile without DQT / DHT / APP0): a TIFF JPEGTables split."""
    segs = _segments(tile)
    tables = b"".join(tile[s:e] for m, s, e in segs if m in (0xDB, 0xC4))
    first_scan = segs[-1][2]
    head = b"".join(tile[s:e] for m, s, e in segs if m not in (0xDB, 0xC4, 0xE0))
    return b"\xff\xd8" + tables + b"\xff\xd9", b"\xff\xd8" + head + tile[first_scan:]


def generic_tiff(path: Path, secret: str) -> list[str]:
    """Full JPEG tiles, one hiding place per tile (all of crafts.jpeg_hiding_places and a
    progressive tile with a COM between its scans)."""
    blocks = _blocks(384, 512, 5)
    tiles = [crafts.jpeg(b) for b in blocks]
    places = sorted(crafts.jpeg_hiding_places(tiles[0], b""))
    planted = []
    for i, place in enumerate(places):
        word = f"{secret}T{i}"
        tiles[i] = crafts.jpeg_hiding_places(tiles[i], word.encode())[place]
        planted.append(word)
    word = f"{secret}PROG"
    tiles[len(places)] = crafts.com_between_scans(crafts.progressive(blocks[len(places)]),
                                                  word.encode())  # fmt: skip
    planted.append(word)
    tifffile.imwrite(path, iter(tiles), shape=(384, 512, 3), dtype=np.uint8, tile=(TILE, TILE),
                     compression=7, photometric="rgb", metadata=None)  # fmt: skip
    return planted


def svs_shared_tables(path: Path, secret: str) -> list[str]:
    """An Aperio SVS whose JPEG tiles share JPEGTables; the tables carry a COM and text after
    their EOI, tiles carry text after EOI, a COM and an APP segment after the scan."""
    blocks = _blocks(384, 512, 6)
    full = [crafts.jpeg(b) for b in blocks]
    tables, _ = abbreviate(full[0])
    tiles = [abbreviate(t)[1] for t in full]
    words = [f"{secret}S{i}" for i in range(5)]
    tables = crafts.after_soi(tables, crafts.segment(0xFE, words[0].encode())) + words[1].encode()
    tiles[0] += words[2].encode()
    tiles[1] = crafts.before_eoi(tiles[1], crafts.segment(0xFE, words[3].encode()))
    tiles[2] = crafts.before_eoi(tiles[2], crafts.segment(0xEB, words[4].encode()))
    desc = f"{APERIO}\r\n512x384 [0,0 512x384] ({TILE}x{TILE}) JPEG/RGB Q=85|AppMag = 20|MPP = 0.5"
    tifffile.imwrite(path, iter(tiles), shape=(384, 512, 3), dtype=np.uint8, tile=(TILE, TILE),
                     compression=7, photometric="rgb", jpegtables=tables, description=desc,
                     metadata=None)  # fmt: skip
    return words


def svs_j2k(path: Path, secret: str) -> list[str]:
    """An Aperio SVS with JPEG 2000 tiles (33005): a COM in the main header, a COM in a
    tile-part header, text after EOC, a JP2 wrapper with an `xml ` box."""
    blocks = _blocks(256, 384, 7)
    tiles = [crafts.j2k(b) for b in blocks]
    words = [f"{secret}J{i}" for i in range(4)]
    tiles[0] = crafts.j2k_main_com(tiles[0], words[0].encode())
    tiles[1] = crafts.j2k_tile_part_com(tiles[1], words[1].encode())
    tiles[2] += words[2].encode()
    tiles[3] = crafts.jp2_with_xml(blocks[3], words[3].encode())
    desc = f"{APERIO}\r\n384x256 [0,0 384x256] ({TILE}x{TILE}) J2K/RGB Q=70|AppMag = 20|MPP = 0.5"
    tifffile.imwrite(path, iter(tiles), shape=(256, 384, 3), dtype=np.uint8, tile=(TILE, TILE),
                     compression=33005, photometric="rgb", description=desc,
                     metadata=None)  # fmt: skip
    return words


def dicom_frames(real: Path, out: Path, secret: str) -> list[str]:
    """The real wsi2dcm pyramid with its level-0 frames re-encapsulated (pydicom.encaps) with
    text after EOI, a COM and an APP segment after the scan, EXIF and ICC before it."""
    shutil.copytree(real, out)
    level0 = out / "level-0-frames-0-30.dcm"
    ds = pydicom.dcmread(level0)
    frames = [bytes(f) for f in generate_frames(ds.PixelData, number_of_frames=ds.NumberOfFrames)]
    frames = [f[:-1] if f.endswith(b"\xff\xd9\x00") else f for f in frames]  # fragment padding
    words = [f"{secret}D{i}" for i in range(5)]
    frames[0] += words[0].encode()
    frames[1] = crafts.before_eoi(frames[1], crafts.segment(0xFE, words[1].encode()))
    frames[2] = crafts.before_eoi(frames[2], crafts.segment(0xE5, words[2].encode()))
    frames[3] = crafts.after_soi(
        frames[3], crafts.segment(0xE1, b"Exif\x00\x00" + words[3].encode())
    )
    frames[4] = crafts.after_soi(frames[4], crafts.segment(0xE2, b"ICC_PROFILE\x00\x01\x01"
                                                           + words[4].encode()))  # fmt: skip
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds.save_as(level0)
    return words


def decode_jpeg(data: bytes) -> np.ndarray:
    return np.asarray(imagecodecs.jpeg8_decode(data))


def _patch_u32(data: bytearray, at: int, value: int) -> None:
    data[at : at + 4] = value.to_bytes(4, "little")


def ndpi_hidden(real: Path, out: Path, secret: str) -> list[str]:
    """The real NDPI with the JPEG stream of its first two levels rewritten by raw bytes: an
    EXIF APP1 and a COM inserted after SOI (the McuStarts tile table shifted to match), a COM
    and an APP9 after the scan, text after EOI. The new streams go to the end of the file and
    the page's StripOffsets / StripByteCounts / McuStarts are patched in place."""
    data = bytearray(real.read_bytes())
    words = []
    with tifffile.TiffFile(real) as tif:
        pages = [tif.pages[i] for i in (0, 1)]
        for n, page in enumerate(pages):
            assert isinstance(page, tifffile.TiffPage)
            offsets, counts = page.tags["StripOffsets"], page.tags["StripByteCounts"]
            mcu = page.tags[65426]  # NDPI McuStarts: tile starts relative to the stream
            assert offsets.count == counts.count == 1 and mcu.dtype == 4  # LONG, inline offsets
            start = int.from_bytes(data[offsets.valueoffset : offsets.valueoffset + 4], "little")
            size = int.from_bytes(data[counts.valueoffset : counts.valueoffset + 4], "little")
            stream = bytes(data[start : start + size])
            assert stream[:2] == b"\xff\xd8" and stream.endswith(b"\xff\xd9")
            w = [f"{secret}N{n}{k}" for k in range(5)]
            head = crafts.segment(0xE1, b"Exif\x00\x00" + w[0].encode()) + crafts.segment(
                0xFE, w[1].encode()
            )
            tail = crafts.segment(0xFE, w[2].encode()) + crafts.segment(0xE9, w[3].encode())
            new = stream[:2] + head + stream[2:-2] + tail + b"\xff\xd9" + w[4].encode()
            _patch_u32(data, offsets.valueoffset, len(data))
            _patch_u32(data, counts.valueoffset, len(new))
            for k in range(mcu.count):
                at = mcu.valueoffset + 4 * k
                value = int.from_bytes(data[at : at + 4], "little")
                _patch_u32(data, at, value + len(head))
            data += new
            words += w
    out.write_bytes(bytes(data))
    return words
