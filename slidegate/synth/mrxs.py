"""A synthetic 3DHISTECH MRXS slide in the real layout, with canaries where real files hide PHI.

Layout (OpenSlide `openslide-vendor-mirax.c`, anonymize-slide, wsi-anon): `<name>.mrxs` (a JPEG
picture of the slide, label included) plus the folder `<name>/` with
- `Slidedat.ini` (UTF-8 BOM, CRLF): [GENERAL] SLIDE_ID / SLIDE_NAME / PROJECT_NAME /
  SLIDE_CREATIONDATETIME / SLIDE_UTC_CREATIONDATETIME, [HIERARCHICAL] with the zoom levels
  ("Slide zoom level") and the non-hierarchical layer "Scan data layer" (SlideThumbnail = macro,
  SlideBarcode = label, SlidePreview = thumbnail), a SCANNER_HARDWARE_ID per layer section;
- `Index.dat`: "01.02" + SLIDE_ID, then pointers to the hierarchical pages (one record per
  image: index, offset, length, file number) and the non-hierarchical records;
- `Data0000.dat`: a header "01.02" + SLIDE_ID + `ProfileName="..."`, then the JPEG images
  (levels and associated).
Level 0 is a grid of JPEG images without overlap; level i concatenates 2^i x 2^i of them.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from slidegate.synth.canary import number, token
from slidegate.synth.label import render_label, render_macro
from slidegate.synth.texture import RGB, downsample, tissue_image

VERSION = b"01.02"


@dataclass(frozen=True)
class MrxsMeta:
    slide_id: str  # also the Index.dat / Data*.dat header id
    slide_name: str
    project_name: str
    created: str  # SLIDE_CREATIONDATETIME, e.g. "2024.03.07 10:11:12"
    created_utc: str
    scanner_id: str  # SCANNER_HARDWARE_ID
    profile_name: str  # ProfileName="..." in the Data*.dat header
    label_lines: tuple[str, ...]  # rendered into label, macro and the .mrxs picture
    mpp: float = 0.25

    def canaries(self) -> list[tuple[str, str]]:
        return [
            ("mirax.GENERAL.SLIDE_ID", self.slide_id),
            ("mirax.GENERAL.SLIDE_NAME", self.slide_name),
            ("mirax.GENERAL.PROJECT_NAME", self.project_name),
            ("mirax.GENERAL.SLIDE_CREATIONDATETIME", self.created),
            ("mirax.GENERAL.SLIDE_UTC_CREATIONDATETIME", self.created_utc),
            ("mirax.SCANNER_HARDWARE_ID", self.scanner_id),
            ("mrxs.datafile.ProfileName", self.profile_name),
            *((f"label.line{i}", line) for i, line in enumerate(self.label_lines)),
        ]


def canary_meta(seed: int, n: int = 1) -> MrxsMeta:
    """Canaries in every field phi-locations.md names for MRXS; dates unique per (seed, n)."""
    day = 1 + int(number(seed, "mrxsday", n, digits=4)) % 28
    sec = int(number(seed, "mrxssec", n, digits=6)) % 86400
    hms = f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
    return MrxsMeta(
        slide_id=token(seed, "S", n, "MXID"),
        slide_name=token(seed, "S", n, "MXNM"),
        project_name=token(seed, "S", n, "MXPR"),
        created=f"2021.07.{day:02d} {hms}",
        created_utc=f"2021-07-{day:02d}T{hms}Z",
        scanner_id=token(seed, "S", n, "MXSC"),
        profile_name=token(seed, "S", n, "MXPF"),
        label_lines=(token(seed, "P", n, "NAME"), token(seed, "S", n, "LABL")),
    )


def _jpeg(img: RGB, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _ini(sections: list[tuple[str, list[tuple[str, object]]]]) -> bytes:
    lines: list[str] = []
    for name, items in sections:
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {v}" for k, v in items)
    return b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n"


def _level_images(level0: RGB, tile: int, levels: int) -> list[list[tuple[int, RGB]]]:
    """Per level: (image index in the level-0 grid, tile x tile JPEG-ready picture)."""
    h, w = level0.shape[:2]
    across = w // tile
    down = h // tile
    out: list[list[tuple[int, RGB]]] = []
    for lv in range(levels):
        f = 2**lv
        img = level0 if f == 1 else downsample(level0, f)
        images = []
        for gy in range(0, down, f):
            for gx in range(0, across, f):
                pic = np.zeros((tile, tile, 3), np.uint8)
                part = img[
                    gy * tile // f : gy * tile // f + tile, gx * tile // f : gx * tile // f + tile
                ]
                pic[: part.shape[0], : part.shape[1]] = part
                images.append((gy * across + gx, pic))
        out.append(images)
    return out


def write_mrxs(
    out_dir: Path,
    name: str,
    meta: MrxsMeta,
    *,
    seed: int = 0,
    size: tuple[int, int] = (768, 1024),
    tile: int = 256,
    levels: int = 3,
) -> Path:
    """Write `<out_dir>/<name>.mrxs` and `<out_dir>/<name>/`; return the .mrxs path."""
    h, w = size
    if h % tile or w % tile:
        raise ValueError("size must be a multiple of the tile size")
    level0 = tissue_image(seed, size)
    label = render_label(list(meta.label_lines), (300, 300))
    macro = render_macro(downsample(level0, 4), label, (300, 900))
    preview = downsample(level0, 8)
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    header = VERSION + meta.slide_id.encode("ascii")
    profile = f'ProfileName="{meta.profile_name}"'.encode()
    data = bytearray(header + b"\0" * 32 + profile)
    data += b"\0" * (512 - len(data))
    hier: list[list[tuple[int, int, int]]] = []  # per level: (image index, offset, length)
    for images in _level_images(level0, tile, levels):
        page = []
        for index, pic in images:
            blob = _jpeg(pic)
            page.append((index, len(data), len(blob)))
            data += blob
        hier.append(page)
    nonhier = []  # (offset, length) for macro, label, preview
    for pic in (macro, label, preview):
        blob = _jpeg(pic)
        nonhier.append((len(data), len(blob)))
        data += blob
    (folder / "Data0000.dat").write_bytes(bytes(data))
    (folder / "Index.dat").write_bytes(_index(header, hier, nonhier))
    (folder / "Slidedat.ini").write_bytes(_slidedat(meta, w // tile, h // tile, tile, levels))
    mrxs = Path(out_dir) / f"{name}.mrxs"
    mrxs.write_bytes(_jpeg(macro))  # real .mrxs files are a JPEG picture of the slide
    return mrxs


def _index(
    header: bytes, hier: list[list[tuple[int, int, int]]], nonhier: list[tuple[int, int]]
) -> bytes:
    buf = bytearray(header)
    hier_root = len(buf)
    buf += b"\0" * 8  # hier table pointer, nonhier table pointer

    def i32(*values: int) -> bytes:
        return struct.pack(f"<{len(values)}i", *values)

    # hierarchical: table of one pointer per level -> list head (0, page ptr) -> data page
    hier_table = len(buf)
    buf += b"\0" * (4 * len(hier))
    for lv, page in enumerate(hier):
        head = len(buf)
        buf += i32(0, head + 8)
        buf += i32(len(page), 0)
        for index, offset, length in page:
            buf += i32(index, offset, length, 0)
        buf[hier_table + 4 * lv : hier_table + 4 * lv + 4] = i32(head)
    # non-hierarchical: table of one pointer per record -> (0, page ptr) -> page
    nonhier_table = len(buf)
    buf += b"\0" * (4 * len(nonhier))
    for rec, (offset, length) in enumerate(nonhier):
        head = len(buf)
        buf += i32(0, head + 8)
        buf += i32(1, 0, 0, 0, offset, length, 0)
        buf[nonhier_table + 4 * rec : nonhier_table + 4 * rec + 4] = i32(head)
    buf[hier_root : hier_root + 8] = i32(hier_table, nonhier_table)
    return bytes(buf)


def _slidedat(meta: MrxsMeta, across: int, down: int, tile: int, levels: int) -> bytes:
    general: list[tuple[str, object]] = [
        ("SLIDE_VERSION", "01.02"),
        ("SLIDE_ID", meta.slide_id),
        ("SLIDE_NAME", meta.slide_name),
        ("PROJECT_NAME", meta.project_name),
        ("SLIDE_CREATIONDATETIME", meta.created),
        ("SLIDE_UTC_CREATIONDATETIME", meta.created_utc),
        ("IMAGENUMBER_X", across),
        ("IMAGENUMBER_Y", down),
        ("OBJECTIVE_MAGNIFICATION", 20),
        ("CameraImageDivisionsPerSide", 1),
    ]
    hierarchical: list[tuple[str, object]] = [
        ("HIER_COUNT", 1),
        ("HIER_0_NAME", "Slide zoom level"),
        ("HIER_0_COUNT", levels),
        *((f"HIER_0_VAL_{i}", f"ZoomLevel_{i}") for i in range(levels)),
        *((f"HIER_0_VAL_{i}_SECTION", f"LAYER_0_LEVEL_{i}_SECTION") for i in range(levels)),
        ("NONHIER_COUNT", 1),
        ("NONHIER_0_NAME", "Scan data layer"),
        ("NONHIER_0_COUNT", 3),
        ("NONHIER_0_VAL_0", "ScanDataLayer_SlideThumbnail"),
        ("NONHIER_0_VAL_0_SECTION", "NONHIERLAYER_0_LEVEL_0_SECTION"),
        ("NONHIER_0_VAL_1", "ScanDataLayer_SlideBarcode"),
        ("NONHIER_0_VAL_1_SECTION", "NONHIERLAYER_0_LEVEL_1_SECTION"),
        ("NONHIER_0_VAL_2", "ScanDataLayer_SlidePreview"),
        ("NONHIER_0_VAL_2_SECTION", "NONHIERLAYER_0_LEVEL_2_SECTION"),
        ("INDEXFILE", "Index.dat"),
    ]
    sections: list[tuple[str, list[tuple[str, object]]]] = [
        ("GENERAL", general),
        ("HIERARCHICAL", hierarchical),
        ("DATAFILE", [("FILE_COUNT", 1), ("FILE_0", "Data0000.dat")]),
    ]
    for i in range(levels):
        sections.append(
            (
                f"LAYER_0_LEVEL_{i}_SECTION",
                [
                    ("IMAGE_CONCAT_FACTOR", 0 if i == 0 else 1),
                    ("OVERLAP_X", 0),
                    ("OVERLAP_Y", 0),
                    ("MICROMETER_PER_PIXEL_X", meta.mpp * 2**i),
                    ("MICROMETER_PER_PIXEL_Y", meta.mpp * 2**i),
                    ("IMAGE_FILL_COLOR_BGR", 16777215),
                    ("DIGITIZER_WIDTH", tile),
                    ("DIGITIZER_HEIGHT", tile),
                    ("IMAGE_FORMAT", "JPEG"),
                ],
            )
        )
    sections.append(("NONHIERLAYER_0_SECTION", [("SCANNER_HARDWARE_ID", meta.scanner_id)]))
    for i, key in enumerate(("THUMBNAIL", "BARCODE", "PREVIEW")):
        sections.append((f"NONHIERLAYER_0_LEVEL_{i}_SECTION", [(f"{key}_IMAGE_TYPE", "JPEG")]))
    return _ini(sections)
