"""Zarr v3 array->bytes codecs for pass-through chunks: JPEG and JPEG 2000 via imagecodecs.

A pass-through chunk is the source tile's compressed bytes, unchanged. To read it, zarr needs a
codec that decodes those bytes exactly as tifffile does (same JPEG tables, same colour spaces).
The codec names follow zarr-python's convention for numcodecs codecs: "numcodecs.<codec id>",
with the imagecodecs numcodecs configuration (JPEG tables base64, hence JSON-safe). These codecs
are outside the Zarr v3 specification: a reader needs them registered (`register()` here, or
the snippet in the README); the portable modes (lossless, jpeg) need nothing but zarr.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
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

JPEG = "numcodecs.imagecodecs_jpeg"
JPEG2K = "numcodecs.imagecodecs_jpeg2k"
#: TIFF compression tags whose tiles pass through, and the codec that reads them
PASSTHROUGH_COMPRESSIONS: dict[int, str] = {7: JPEG, 33003: JPEG2K, 33005: JPEG2K, 34712: JPEG2K}


@dataclass(frozen=True)
class _ImagecodecsCodec(ArrayBytesCodec):
    """Decodes one chunk (a whole JPEG / JPEG 2000 stream) to the chunk's (y, x, samples)."""

    name: ClassVar[str]
    numcodec: ClassVar[type[Any]]
    configuration: dict[str, Any]
    is_fixed_size = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if data.get("name") != cls.name:
            raise ValueError(f"expected codec {cls.name}, got {data.get('name')}")
        return cls(configuration=dict(data.get("configuration") or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "configuration": dict(self.configuration)}

    def _codec(self) -> Any:
        return self.numcodec.from_config(dict(self.configuration))

    def _decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        arr = np.asarray(self._codec().decode(data))
        if arr.size != int(np.prod(shape)):
            raise ValueError(f"{self.name}: decoded chunk has {arr.shape}, expected {shape}")
        return arr.reshape(shape)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        arr = await asyncio.to_thread(self._decode, chunk_bytes.to_bytes(), chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(arr)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer:
        data = np.ascontiguousarray(chunk_array.as_numpy_array())
        out = await asyncio.to_thread(self._codec().encode, data)
        return chunk_spec.prototype.buffer.from_bytes(bytes(out))

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class ImagecodecsJpeg(_ImagecodecsCodec):
    name: ClassVar[str] = JPEG
    numcodec: ClassVar[type[Any]] = icn.Jpeg


@dataclass(frozen=True)
class ImagecodecsJpeg2k(_ImagecodecsCodec):
    name: ClassVar[str] = JPEG2K
    numcodec: ClassVar[type[Any]] = icn.Jpeg2k


_registered = False


def register() -> None:
    """Make zarr (and numcodecs) able to open pass-through output. Idempotent."""
    global _registered
    if _registered:
        return
    register_codec(JPEG, ImagecodecsJpeg)
    register_codec(JPEG2K, ImagecodecsJpeg2k)
    icn.register_codec(icn.Jpeg)
    icn.register_codec(icn.Jpeg2k)
    _registered = True


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def tile_codec(page: tifffile.TiffPage) -> _ImagecodecsCodec:
    """The codec that decodes this page's tiles like tifffile does (tables, colour spaces)."""
    kind = PASSTHROUGH_COMPRESSIONS.get(int(page.compression))
    if kind == JPEG:
        cs_jpeg, cs_data = jpeg_decode_colorspace(
            page.photometric, page.planarconfig, page.extrasamples, page.is_jfif
        )
        config = {
            "tables": _b64(page.jpegtables),
            "header": _b64(page.jpegheader),
            "bitspersample": int(page.bitspersample),
            "colorspace_jpeg": cs_jpeg,
            "colorspace_data": cs_data,
        }
        return ImagecodecsJpeg(configuration={k: v for k, v in config.items() if v is not None})
    if kind == JPEG2K:
        return ImagecodecsJpeg2k(configuration={})
    raise ValueError(f"compression {page.compression} has no pass-through codec")


def jpeg2k_available() -> bool:
    return bool(imagecodecs.JPEG2K.available)
