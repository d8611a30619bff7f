"""3DHISTECH MRXS (MIRAX): `<name>.mrxs` plus the folder `<name>/`, read with OpenSlide.

The cohort row names the `.mrxs` file; the folder beside it (Slidedat.ini, Index.dat,
Data*.dat) belongs to the slide and is hashed with it. Pyramid levels come from OpenSlide
(`read_region`, bounded regions); associated images are the non-hierarchical "Scan data layer"
entries of Slidedat.ini (SlideBarcode = label, SlideThumbnail = macro, SlidePreview =
thumbnail, anything else = other) and the `.mrxs` file itself when it is a picture; none is
ever published.

Fields: every Slidedat.ini key as `mirax.<GROUP>.<KEY>` (OpenSlide's property names; the file
may start with a UTF-8 BOM and use CRLF), plus every occurrence of SLIDE_ID in the header of
Index.dat and each Data*.dat (`mrxs.index.SLIDE_ID`, `mrxs.datafile.SLIDE_ID`, location = file
and byte offset) and each `ProfileName="..."` there (`mrxs.datafile.ProfileName`), so the leak
audit searches for them too.
"""

from __future__ import annotations

import configparser
import hashlib
import re
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from slidegate.errors import CorruptSlideError
from slidegate.formats.registry import content_sha256, slide_facts
from slidegate.models import AssociatedImage, AssociatedKind, LevelFacts, MetadataField, SlideFacts

FORMAT = "mrxs"
SLIDEDAT = "Slidedat.ini"
HEADER_BYTES = 64 * 1024  # where the .dat headers repeat SLIDE_ID
PROFILE_NAME = re.compile(rb'ProfileName="([^"\x00]{1,256})"')
ASSOCIATED_KIND: dict[str, AssociatedKind] = {
    "ScanDataLayer_SlideBarcode": "label",
    "ScanDataLayer_SlideThumbnail": "macro",
    "ScanDataLayer_SlidePreview": "thumbnail",
}
#: OpenSlide's name for each kind, to read the image size
OPENSLIDE_NAME = {"label": "label", "macro": "macro", "thumbnail": "thumbnail"}


def sniff(path: Path) -> bool:
    return path.suffix.lower() == ".mrxs" and path.is_file()


def folder_of(path: Path) -> Path:
    return path.with_suffix("")


def _corrupt(path: Path, what: str, reason: str) -> CorruptSlideError:
    return CorruptSlideError(f"slide {path}: {what}", reason=f"corrupt: {reason}")


def read_slidedat(path: Path) -> configparser.RawConfigParser:
    """Slidedat.ini of the slide, keys case preserved (BOM and CRLF tolerated)."""
    ini = folder_of(path) / SLIDEDAT
    if not ini.is_file():
        raise _corrupt(
            path,
            f"the MRXS data folder {folder_of(path).name}/ with {SLIDEDAT} is missing beside the "
            ".mrxs file; copy the whole slide folder next to it",
            "MRXS folder missing",
        )
    raw = ini.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error:
        raise _corrupt(
            path, f"{SLIDEDAT} cannot be parsed; restore the slide folder", "bad Slidedat.ini"
        ) from None
    return parser


def ini_fields(parser: configparser.RawConfigParser) -> list[MetadataField]:
    out = []
    for group in parser.sections():
        for key, value in parser.items(group):
            if value is not None and value.strip():
                out.append(
                    MetadataField(
                        name=f"mirax.{group}.{key}",
                        location=f"{SLIDEDAT} [{group}] {key}",
                        value=value.strip(),
                    )
                )
    return out


def _data_files(path: Path, parser: configparser.RawConfigParser) -> list[tuple[str, Path]]:
    """(field name, file) for Index.dat and every Data*.dat of the folder."""
    folder = folder_of(path)
    index = parser.get("HIERARCHICAL", "INDEXFILE", fallback="Index.dat")
    files = [("mrxs.index.SLIDE_ID", folder / Path(index).name)]
    names = {p.name for _, p in files}
    datafiles = [p for p in sorted(folder.glob("*.dat")) if p.name not in names]
    files.extend(("mrxs.datafile.SLIDE_ID", p) for p in datafiles)
    return files


def slide_id_fields(path: Path, parser: configparser.RawConfigParser) -> list[MetadataField]:
    """SLIDE_ID wherever it repeats in the .dat headers, and each `ProfileName="..."` there."""
    slide_id = parser.get("GENERAL", "SLIDE_ID", fallback="").strip()
    needle = slide_id.encode("utf-8")
    out = []
    for name, file in _data_files(path, parser):
        if not file.is_file():
            continue
        with open(file, "rb") as fh:
            head = fh.read(HEADER_BYTES)
        start = head.find(needle) if needle else -1
        while start != -1:
            out.append(
                MetadataField(name=name, location=f"{file.name} byte {start}", value=slide_id)
            )
            start = head.find(needle, start + 1)
        for m in PROFILE_NAME.finditer(head):
            value = m.group(1).decode("utf-8", errors="replace").strip()
            if value:
                out.append(
                    MetadataField(
                        name=name.replace("SLIDE_ID", "ProfileName"),
                        location=f"{file.name} byte {m.start(1)}",
                        value=value,
                    )
                )
    return out


def open_slide(path: Path) -> Any:
    import openslide

    read_slidedat(path)  # a clear message when the folder is missing
    try:
        return openslide.OpenSlide(str(path))
    except Exception as exc:
        raise _corrupt(
            path,
            f"OpenSlide cannot open the MRXS slide ({type(exc).__name__}); the slide folder is "
            "damaged or incomplete: restore it from the archive",
            "unreadable MRXS",
        ) from None


def level_facts(osr: Any) -> tuple[LevelFacts, ...]:
    props = osr.properties
    fmt = props.get("mirax.LAYER_0_LEVEL_0_SECTION.IMAGE_FORMAT", "JPEG")
    out = []
    for i, ((w, h), ds) in enumerate(zip(osr.level_dimensions, osr.level_downsamples, strict=True)):
        th = props.get(f"openslide.level[{i}].tile-height")
        tw = props.get(f"openslide.level[{i}].tile-width")
        out.append(
            LevelFacts(
                index=i,
                page=i,
                height=int(h),
                width=int(w),
                samples=3,
                dtype="uint8",
                tile_height=int(th) if th else None,
                tile_width=int(tw) if tw else None,
                compression=str(fmt).upper(),
                downsample=float(ds),
            )
        )
    return tuple(out)


def associated(path: Path, parser: configparser.RawConfigParser, osr: Any) -> list[AssociatedImage]:
    out = []
    n = 0
    group = "HIERARCHICAL"
    for i in range(parser.getint(group, "NONHIER_COUNT", fallback=0)):
        for j in range(parser.getint(group, f"NONHIER_{i}_COUNT", fallback=0)):
            value = parser.get(group, f"NONHIER_{i}_VAL_{j}", fallback="")
            if not value.startswith("ScanDataLayer_") or value == "ScanDataLayer_WholeSlide":
                continue
            kind = ASSOCIATED_KIND.get(value, "other")
            height = width = 0
            name = OPENSLIDE_NAME.get(kind)
            if name and name in osr.associated_images:
                width, height = osr.associated_images[name].size
            out.append(
                AssociatedImage(kind=kind, page=n, height=height, width=width, compression="JPEG")
            )
            n += 1
    size = _picture_size(path)
    if size is not None:  # the .mrxs file itself is a photo of the slide, label included
        out.append(
            AssociatedImage(kind="macro", page=n, height=size[0], width=size[1], compression="JPEG")
        )
    return out


def _picture_size(path: Path) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(path) as img:
            return int(img.height), int(img.width)
    except Exception:
        return None


def _sha256(path: Path) -> tuple[str, int]:
    """The .mrxs file and its folder, together."""
    file_sha, file_size = content_sha256(path)
    dir_sha, dir_size = content_sha256(folder_of(path))
    return hashlib.sha256(f"{file_sha}:{dir_sha}".encode()).hexdigest(), file_size + dir_size


def _mpp(parser: configparser.RawConfigParser) -> tuple[float | None, float | None]:
    section = parser.get("HIERARCHICAL", "HIER_0_VAL_0_SECTION", fallback="")
    out = []
    for key in ("MICROMETER_PER_PIXEL_Y", "MICROMETER_PER_PIXEL_X"):
        try:
            value = float(parser.get(section, key, fallback=""))
        except ValueError:
            value = 0.0
        out.append(value if value > 0 else None)
    return out[0], out[1]


def read_facts(path: Path, slide_id: str) -> SlideFacts:
    path = Path(path)
    parser = read_slidedat(path)
    osr = open_slide(path)
    try:
        levels = level_facts(osr)
        images = associated(path, parser, osr)
    finally:
        osr.close()
    fields = ini_fields(parser) + slide_id_fields(path, parser)
    return slide_facts(
        path,
        slide_id,
        FORMAT,
        mpp_yx=_mpp(parser),
        levels=levels,
        associated=images,
        fields=fields,
        digest=_sha256(path),  # the .mrxs file and its folder
    )


class MrxsReader:
    """Context manager over one MRXS slide: `read(level, y, x, h, w) -> (h, w, 3)` uint8."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._osr: Any = None

    def __enter__(self) -> MrxsReader:
        self._osr = open_slide(self.path)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._osr is not None:
            self._osr.close()
            self._osr = None

    def read(self, level: LevelFacts, y: int, x: int, h: int, w: int) -> np.ndarray:
        if self._osr is None:
            raise RuntimeError("MrxsReader is not open; use it as a context manager")
        dims = self._osr.level_dimensions
        if level.index >= len(dims) or dims[level.index] != (level.width, level.height):
            raise _corrupt(
                self.path,
                f"level {level.index} differs from the inventory; the source changed: rerun "
                "the inventory",
                "source changed",
            )
        if h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > level.height or x + w > level.width:
            raise ValueError(f"region y={y} x={x} h={h} w={w} is outside level {level.index}")
        ds = self._osr.level_downsamples[level.index]
        try:
            region = self._osr.read_region((round(x * ds), round(y * ds)), level.index, (w, h))
        except Exception as exc:
            raise _corrupt(
                self.path,
                f"level {level.index}: a tile cannot be decoded ({type(exc).__name__}); restore "
                "the slide folder from the archive",
                "undecodable tile",
            ) from None
        return np.asarray(region.convert("RGBA"))[:, :, :3].copy()
