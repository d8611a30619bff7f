"""Zarr v3 array->bytes codecs of slidegate's JPEG / JPEG 2000 chunks.

- `jpeg` (registered: zarr-developers/zarr-extensions, codecs/jpeg): each chunk is a
  self-contained baseline JPEG stream, channel axis innermost (a `transpose` codec before it),
  decoded by any stock JPEG decoder. Pass-through chunks are the source tiles with the shared
  TIFF JPEGTables spliced in (passthrough.py) and no `quality` in the configuration; re-encoded
  chunks carry `quality`. `encoded_color_space: "rgb"` marks streams coded in RGB (no YCbCr
  transform, as Aperio's); they also carry an Adobe APP14 marker (transform 0), so a decoder
  that ignores the configuration decodes them the same way.
- `numcodecs.imagecodecs_jpeg2k`: JPEG 2000 codestreams (no registered Zarr v3 name exists);
  the name follows zarr-python's numcodecs convention.
- `numcodecs.imagecodecs_jpeg`: the pass-through codec of earlier releases (tables in its
  configuration), still readable here.

Receivers install the `slidegate-receiver` distribution (receiver/ in this repository): it
registers the same decoders through zarr's `zarr.codecs` entry points, so no code is needed.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

import imagecodecs
import imagecodecs.numcodecs as icn
import numpy as np
import tifffile
from tifffile.tifffile import jpeg_decode_colorspace
from zarr.abc.codec import ArrayBytesCodec
from zarr.registry import register_codec

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

JPEG = "jpeg"
JPEG2K = "numcodecs.imagecodecs_jpeg2k"
LEGACY_JPEG = "numcodecs.imagecodecs_jpeg"
#: TIFF compression tags whose tiles pass through, and the codec that reads them
PASSTHROUGH_COMPRESSIONS: dict[int, str] = {7: JPEG, 33003: JPEG2K, 33005: JPEG2K, 34712: JPEG2K}
_JPEG_KEYS = frozenset({"quality", "encoded_color_space", "subsampling"})


class _ChunkCodec(ArrayBytesCodec):
    """Decode one chunk's stream to the chunk's shape (after the transpose: (y, x, samples))."""

    name: ClassVar[str]
    configuration: dict[str, Any]
    is_fixed_size = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if data.get("name") != cls.name:
            raise ValueError(f"expected codec {cls.name}, got {data.get('name')}")
        return cls(configuration=dict(data.get("configuration") or {}))  # type: ignore[call-arg]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "configuration": dict(self.configuration)}

    def decode_bytes(self, data: bytes) -> np.ndarray:
        raise NotImplementedError

    def encode_array(self, data: np.ndarray) -> bytes:
        raise NotImplementedError

    def _decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        arr = np.asarray(self.decode_bytes(data))
        if arr.size != int(np.prod(shape)):
            raise ValueError(f"{self.name}: decoded chunk has {arr.shape}, expected {shape}")
        return arr.reshape(shape)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        arr = await asyncio.to_thread(self._decode, chunk_bytes.to_bytes(), chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(arr)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer:
        data = np.ascontiguousarray(chunk_array.as_numpy_array())
        out = await asyncio.to_thread(self.encode_array, data)
        return chunk_spec.prototype.buffer.from_bytes(bytes(out))

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class Jpeg(_ChunkCodec):
    """The registered `jpeg` codec: baseline JPEG per chunk, uint8, 1 or 3 channels."""

    name: ClassVar[str] = JPEG
    configuration: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.configuration) - _JPEG_KEYS
        if unknown:
            raise ValueError(f"jpeg codec: unknown configuration {sorted(unknown)}")

    def to_dict(self) -> dict[str, Any]:
        if not self.configuration:
            return {"name": self.name}
        return {"name": self.name, "configuration": dict(self.configuration)}

    def decode_bytes(self, data: bytes) -> np.ndarray:
        if self.configuration.get("encoded_color_space") == "rgb":
            return imagecodecs.jpeg8_decode(data, colorspace="RGB", outcolorspace="RGB")
        return imagecodecs.jpeg8_decode(data)

    def encode_array(self, data: np.ndarray) -> bytes:
        quality = int(self.configuration.get("quality", 90))
        return bytes(imagecodecs.jpeg8_encode(jpeg_image(data), level=quality))


def jpeg_image(data: np.ndarray) -> np.ndarray:
    """A chunk as the JPEG image the `jpeg` codec stores: last axis 3 = RGB (rows of the
    second-last axis), else grayscale (singleton axes dropped, the last axis the width)."""
    if data.ndim >= 2 and data.shape[-1] == 3:
        return data.reshape(-1, data.shape[-2], 3)
    shape = [n for n in data.shape if n != 1] or [1]
    return data.reshape(-1, shape[-1])


@dataclass(frozen=True)
class ImagecodecsJpeg2k(_ChunkCodec):
    name: ClassVar[str] = JPEG2K
    configuration: dict[str, Any] = field(default_factory=dict)

    def decode_bytes(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpeg2k_decode(data)

    def encode_array(self, data: np.ndarray) -> bytes:
        return bytes(imagecodecs.jpeg2k_encode(data))


@dataclass(frozen=True)
class ImagecodecsJpeg(_ChunkCodec):
    """Earlier releases' pass-through codec (JPEG tables in the configuration): read only."""

    name: ClassVar[str] = LEGACY_JPEG
    configuration: dict[str, Any] = field(default_factory=dict)

    def decode_bytes(self, data: bytes) -> np.ndarray:
        return np.asarray(icn.Jpeg.from_config(dict(self.configuration)).decode(data))

    def encode_array(self, data: np.ndarray) -> bytes:
        return bytes(icn.Jpeg.from_config(dict(self.configuration)).encode(data))


_registered = False


def register() -> None:
    """Make zarr able to open slidegate's JPEG / JPEG 2000 output. Idempotent. A codec name
    that an installed distribution already provides (the receiver's entry points) is left to
    it: one implementation per name, no zarr warning."""
    global _registered
    if _registered:
        return
    provided = {e.name for e in entry_points(group="zarr.codecs")}
    for codec in (Jpeg, ImagecodecsJpeg2k, ImagecodecsJpeg):
        if codec.name not in provided:
            register_codec(codec.name, codec)
    icn.register_codec(icn.Jpeg)
    icn.register_codec(icn.Jpeg2k)
    _registered = True


def rgb_coded(page: tifffile.TiffPage) -> bool:
    """True when tifffile decodes this JPEG page's tiles as RGB-coded (no YCbCr transform)."""
    cs_jpeg, _ = jpeg_decode_colorspace(
        page.photometric, page.planarconfig, page.extrasamples, page.is_jfif
    )
    return cs_jpeg == 2 and int(page.samplesperpixel) == 3


def standard_decode(page: tifffile.TiffPage) -> bool:
    """True when a stock decoder, given the tile with the tables spliced in (and an Adobe
    marker for RGB-coded tiles), produces tifffile's pixels: 8-bit, 1 or 3 samples, output
    gray or RGB."""
    _, cs_data = jpeg_decode_colorspace(
        page.photometric, page.planarconfig, page.extrasamples, page.is_jfif
    )
    samples = int(page.samplesperpixel)
    if int(page.bitspersample) != 8 or samples not in (1, 3) or page.extrasamples:
        return False
    return cs_data is None if samples == 1 else cs_data == 2


def tile_codec(page: tifffile.TiffPage) -> _ChunkCodec:
    """The codec of this page's pass-through chunks."""
    kind = PASSTHROUGH_COMPRESSIONS.get(int(page.compression))
    if kind == JPEG:
        return Jpeg(configuration={"encoded_color_space": "rgb"} if rgb_coded(page) else {})
    if kind == JPEG2K:
        return ImagecodecsJpeg2k(configuration={})
    raise ValueError(f"compression {page.compression} has no pass-through codec")


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def jpeg2k_available() -> bool:
    return bool(imagecodecs.JPEG2K.available)
