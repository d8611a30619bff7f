"""A synthetic Zeiss CZI (ZISRAW) slide scan with canaries in the places ZEN writes PHI.

Segments as czifile reads them (ZISRAW: 32-byte segment headers, 32-byte alignment): file
header, one SubBlock per tile (level-0 mosaic tiles with an M index; pyramid tiles with a
logical size in level-0 pixels and a smaller stored size, as ZEN writes them), the subblock
directory, the XML metadata segment, the attachments Label (an embedded CZI, as slide
scanners store it), SlidePreview and Thumbnail (JPEG), and the attachment directory.
Pixels: `image` (H, W, S) uint8/uint16 as S gray channels (C axis), or RGB uint8 stored as
Bgr24. Tiles are uncompressed, LZW (2), or zstd ("zstd" = CZI compression 5, "zstd1" = 6 with
hi/lo byte packing for 16-bit data).
"""

from __future__ import annotations

import io
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from slidegate.synth.canary import guid, token
from slidegate.synth.label import render_label, render_macro
from slidegate.synth.texture import RGB, downsample

PIXEL_TYPE = {("gray", "uint8"): 0, ("gray", "uint16"): 1, ("rgb", "uint8"): 3}
COMPRESSION = {"none": 0, "lzw": 2, "zstd": 5, "zstd1": 6}


@dataclass(frozen=True)
class CziMeta:
    user: str
    document_name: str
    title: str
    description: str
    created: str  # CreationDate, ISO with offset
    acquired: str  # AcquisitionDateAndTime, ISO UTC
    microscope: str  # instrument name (device id)
    source_path: str  # a file path in the processing history, as ZEN records it
    file_guid: str
    label_lines: tuple[str, ...]
    mpp: float = 0.5

    def canaries(self) -> list[tuple[str, str]]:
        return [
            ("czi.Document/UserName", self.user),
            ("czi.Document/Name", self.document_name),
            ("czi.Document/Title", self.title),
            ("czi.Document/Description", self.description),
            ("czi.Document/CreationDate", self.created),
            ("czi.Image/AcquisitionDateAndTime", self.acquired),
            ("czi.Microscope@Name", self.microscope),
            ("czi.processing path", self.source_path),
            ("czi.header.file_guid", self.file_guid),
            *((f"label.line{i}", line) for i, line in enumerate(self.label_lines)),
        ]


def canary_meta(seed: int, n: int = 1) -> CziMeta:
    return CziMeta(
        user=token(seed, "S", n, "CZUS"),
        document_name=token(seed, "S", n, "CZDN"),
        title=token(seed, "S", n, "CZTI"),
        description=token(seed, "S", n, "CZDE"),
        created=f"2022-02-{1 + n % 27:02d}T08:{n % 60:02d}:31.1234567+01:00",
        acquired=f"2022-02-{1 + n % 27:02d}T07:{n % 60:02d}:48.7654321Z",
        microscope=token(seed, "S", n, "CZMI"),
        source_path=f"D:\\scans\\{token(seed, 'S', n, 'CZPA')}.czi",
        file_guid=guid(seed, "czi", n),
        label_lines=(token(seed, "P", n, "NAME"), token(seed, "S", n, "LABL")),
    )


def _segment(sid: str, data: bytes) -> bytes:
    size = -(-len(data) // 32) * 32
    return struct.pack("<16sqq", sid.encode(), size, len(data)) + data + b"\0" * (size - len(data))


def _dims(
    x: int, y: int, w: int, h: int, sw: int, sh: int, c: int, m: int | None, z: int | None
) -> bytes:
    entries = [(b"X", x, w, sw), (b"Y", y, h, sh), (b"C", c, 1, 1), (b"S", 0, 1, 1)]
    if z is not None:
        entries.append((b"Z", z, 1, 1))
    if m is not None:
        entries.append((b"M", m, 1, 1))
    return b"".join(struct.pack("<4siifi", d, s, n, float(s), st) for d, s, n, st in entries)


def _entry(pixel: int, pos: int, comp: int, pyramid: int, dims: bytes) -> bytes:
    count = len(dims) // 20
    return struct.pack("<2siqiiBB4si", b"DV", pixel, pos, 0, comp, pyramid, 0, b"", count) + dims


def _encode(tile: np.ndarray, compression: str) -> bytes:
    raw = np.ascontiguousarray(tile).tobytes()
    if compression == "none":
        return raw
    import imagecodecs

    if compression == "lzw":
        return bytes(imagecodecs.lzw_encode(raw))
    if compression == "zstd":
        return bytes(imagecodecs.zstd_encode(raw))
    if tile.dtype.itemsize == 2:  # zstd1 with hi/lo byte packing: all low bytes, then high
        pairs = np.frombuffer(raw, np.uint8).reshape(-1, 2)
        packed = np.concatenate([pairs[:, 0], pairs[:, 1]]).tobytes()
        return b"\x03\x01\x01" + bytes(imagecodecs.zstd_encode(packed))
    return b"\x01" + bytes(imagecodecs.zstd_encode(raw))


def _jpeg(img: RGB) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _xml(meta: CziMeta, h: int, w: int, channels: int, pixel: str, bits: int) -> str:
    metres = f"{meta.mpp * 1e-6:.6E}"
    chans = "".join(
        f'<Channel Id="Channel:{c}" Name="Ch{c}"><Fluor>Dye{c}</Fluor></Channel>'
        for c in range(channels)
    )
    return (
        "<ImageDocument><Metadata>"
        "<Experiment><ExperimentBlocks><AcquisitionBlock><ProcessingHistory>"
        f"<Input>{escape(meta.source_path)}</Input>"
        "</ProcessingHistory></AcquisitionBlock></ExperimentBlocks></Experiment>"
        "<Information>"
        '<User Id="0"><DisplayName>' + escape(meta.user) + "</DisplayName></User>"
        "<Application><Name>ZEN 3.4 (blue edition)</Name><Version>3.4.91</Version></Application>"
        f"<Document><Name>{escape(meta.document_name)}</Name><Title>{escape(meta.title)}</Title>"
        f"<Description>{escape(meta.description)}</Description>"
        f"<CreationDate>{meta.created}</CreationDate><UserName>{escape(meta.user)}</UserName>"
        "</Document>"
        f"<Image><SizeX>{w}</SizeX><SizeY>{h}</SizeY><SizeC>{channels}</SizeC>"
        f"<PixelType>{pixel}</PixelType><ComponentBitCount>{bits}</ComponentBitCount>"
        f"<AcquisitionDateAndTime>{meta.acquired}</AcquisitionDateAndTime>"
        f"<Dimensions><Channels>{chans}</Channels></Dimensions></Image>"
        "<Instrument><Microscopes>"
        f'<Microscope Id="Microscope:1" Name="{escape(meta.microscope)}"/>'
        '</Microscopes><Objectives><Objective Id="Objective:1">'
        "<NominalMagnification>20</NominalMagnification><LensNA>0.8</LensNA>"
        "</Objective></Objectives></Instrument>"
        "</Information>"
        "<Scaling><Items>"
        + "".join(
            f'<Distance Id="{axis}"><Value>{metres}</Value>'
            "<DefaultUnitFormat>µm</DefaultUnitFormat></Distance>"
            for axis in "XY"
        )
        + "</Items></Scaling>"
        "</Metadata></ImageDocument>"
    )


def write_czi(path: Path, image: np.ndarray, meta: CziMeta, **options: Any) -> None:
    """Write `image` (H, W, S) as a tiled mosaic CZI; options as for `czi_bytes`."""
    Path(path).write_bytes(czi_bytes(image, meta, **options))


def czi_bytes(
    image: np.ndarray,
    meta: CziMeta,
    *,
    rgb: bool = False,
    tile: int = 256,
    levels: int = 2,
    compression: str = "none",
    z_planes: int = 1,
    attachments: bool = True,
) -> bytes:
    """A tiled mosaic CZI of `image` with `levels` pyramid levels (factor 2); `z_planes` > 1
    repeats it on several Z planes (a layout slidegate refuses). With `attachments`, the label
    is an embedded CZI (as slide scanners store it), the preview and thumbnail JPEGs."""
    h, w, samples = image.shape
    kind = "rgb" if rgb else "gray"
    pixel = PIXEL_TYPE[(kind, image.dtype.name)]
    comp = COMPRESSION[compression]
    channels = 1 if rgb else samples
    planes = [image[..., ::-1]] if rgb else [image[..., c : c + 1] for c in range(samples)]
    out = bytearray(b"\0" * 544)  # file header segment (32 + 512), written last
    entries: list[bytes] = []
    m = 0
    for lv in range(levels):
        f = 2**lv
        for c, z, plane in [(c, z, p) for z in range(z_planes) for c, p in enumerate(planes)]:
            scaled = plane if f == 1 else _shrink(plane, f)
            for y in range(0, h, tile * f):
                for x in range(0, w, tile * f):
                    part = scaled[y // f : y // f + tile, x // f : x // f + tile]
                    sh, sw = part.shape[:2]
                    lh, lw = min(sh * f, h - y), min(sw * f, w - x)
                    zi = z if z_planes > 1 else None
                    dims = _dims(x, y, lw, lh, sw, sh, c, m if f == 1 else None, zi)
                    m += f == 1
                    entry = _entry(pixel, len(out), comp, 0 if f == 1 else 2, dims)
                    sub_xml = (
                        "<METADATA><Tags><AcquisitionTime>"
                        f"{meta.acquired}</AcquisitionTime></Tags></METADATA>"
                    ).encode()
                    data = _encode(part, compression)
                    body = struct.pack("<iiq", len(sub_xml), 0, len(data)) + entry
                    body += b"\0" * max(256 - len(body), 0) + sub_xml + data
                    entries.append(entry)
                    out += _segment("ZISRAWSUBBLOCK", body)
    directory = len(out)
    out += _segment(
        "ZISRAWDIRECTORY", struct.pack("<i", len(entries)) + b"\0" * 124 + b"".join(entries)
    )
    xml = _xml(
        meta,
        h,
        w,
        channels,
        "Bgr24" if rgb else f"Gray{8 * image.dtype.itemsize}",
        8 * image.dtype.itemsize,
    ).encode("utf-8")
    metadata = len(out)
    out += _segment("ZISRAWMETADATA", struct.pack("<ii", len(xml), 0) + b"\0" * 248 + xml)
    pictures: list[tuple[str, bytes, bytes]] = []
    if attachments:
        tissue = downsample(_as_rgb(image, rgb), max(1, w // 400))
        label = render_label(list(meta.label_lines), (240, 240))
        embedded = czi_bytes(label, meta, rgb=True, levels=1, attachments=False)
        pictures = [
            ("Label", b"CZI", embedded),
            ("SlidePreview", b"JPG", _jpeg(render_macro(tissue, label, (240, 720)))),
            ("Thumbnail", b"JPG", _jpeg(tissue)),
        ]
    entries_a1: list[bytes] = []
    for name, content, blob in pictures:
        entry = struct.pack(
            "<2s10sqi16s8s80s",
            b"A1",
            b"",
            len(out),
            0,
            uuid.uuid4().bytes,
            content,
            name.encode(),
        )
        entries_a1.append(entry)
        out += _segment(
            "ZISRAWATTACH", struct.pack("<i", len(blob)) + b"\0" * 12 + entry + b"\0" * 112 + blob
        )
    attdir = len(out)
    out += _segment(
        "ZISRAWATTDIR", struct.pack("<i", len(entries_a1)) + b"\0" * 252 + b"".join(entries_a1)
    )
    file_guid = uuid.UUID(meta.file_guid).bytes
    header = struct.pack(
        "<iiii16s16siqqiq", 1, 0, 0, 0, file_guid, file_guid, 0, directory, metadata, 0, attdir
    )
    out[:544] = struct.pack("<16sqq", b"ZISRAWFILE", 512, 512) + header + b"\0" * (512 - 80)
    return bytes(out)


def _shrink(plane: np.ndarray, f: int) -> np.ndarray:
    """Mean of f x f blocks (edge rows/columns that do not fill a block are averaged too)."""
    h, w, s = plane.shape
    ph, pw = -(-h // f) * f, -(-w // f) * f
    padded = np.pad(plane.astype(np.float64), ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    mean = padded.reshape(ph // f, f, pw // f, f, s).mean(axis=(1, 3))
    return np.round(mean).astype(plane.dtype)


def _as_rgb(image: np.ndarray, rgb: bool) -> RGB:
    if rgb:
        return image.astype(np.uint8)
    gray = image[..., 0].astype(np.float64)
    span = max(float(gray.max() - gray.min()), 1.0)
    scaled = ((gray - gray.min()) / span * 255).astype(np.uint8)
    return np.repeat(scaled[..., None], 3, axis=2)
