"""The array -> bytes codecs of slidegate's JPEG / JPEG 2000 chunks, for zarr-python 3.

Each chunk is one complete compressed image; decoding reshapes its samples to the chunk shape
(after the array's `transpose` codec: channel axis last). Encoding is provided for `jpeg`
(zarr-extensions: quality 0-100, default 90) and JPEG 2000, so arrays can also be written.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import imagecodecs
import numpy as np
from zarr.abc.codec import ArrayBytesCodec

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer


class _Codec(ArrayBytesCodec):
    name: ClassVar[str]
    keys: ClassVar[frozenset[str] | None] = None  # allowed configuration keys (None: any)
    configuration: dict[str, Any]
    is_fixed_size = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if data.get("name") != cls.name:
            raise ValueError(f"expected codec {cls.name!r}, got {data.get('name')!r}")
        config = dict(data.get("configuration") or {})
        if cls.keys is not None and set(config) - cls.keys:
            raise ValueError(f"{cls.name}: unknown configuration {sorted(set(config) - cls.keys)}")
        return cls(configuration=config)  # type: ignore[call-arg]

    def to_dict(self) -> dict[str, Any]:
        if not self.configuration:
            return {"name": self.name}
        return {"name": self.name, "configuration": dict(self.configuration)}

    def decode_bytes(self, data: bytes) -> np.ndarray:
        raise NotImplementedError

    def encode_array(self, data: np.ndarray) -> bytes:
        raise NotImplementedError

    def _decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        arr = np.asarray(self.decode_bytes(data))
        if arr.size != int(np.prod(shape)):
            raise ValueError(f"{self.name}: a chunk decodes to {arr.shape}, not {shape}")
        return arr.reshape(shape)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        arr = await asyncio.to_thread(self._decode, chunk_bytes.to_bytes(), chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(arr)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer:
        data = np.ascontiguousarray(chunk_array.as_numpy_array())
        out = await asyncio.to_thread(self.encode_array, data)
        return chunk_spec.prototype.buffer.from_bytes(out)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError


def _image(data: np.ndarray) -> np.ndarray:
    """A chunk as a JPEG image: last axis 3 = RGB, else grayscale (zarr-extensions jpeg)."""
    if data.ndim >= 2 and data.shape[-1] == 3:
        return data.reshape(-1, data.shape[-2], 3)
    shape = [n for n in data.shape if n != 1] or [1]
    return data.reshape(-1, shape[-1])


@dataclass(frozen=True)
class Jpeg(_Codec):
    """`jpeg` (zarr-extensions codecs/jpeg): uint8, 1 or 3 channels, baseline JPEG."""

    name: ClassVar[str] = "jpeg"
    keys: ClassVar[frozenset[str] | None] = frozenset(
        {"quality", "encoded_color_space", "subsampling"}
    )
    configuration: dict[str, Any] = field(default_factory=dict)

    def decode_bytes(self, data: bytes) -> np.ndarray:
        if self.configuration.get("encoded_color_space") == "rgb":  # no YCbCr transform
            return imagecodecs.jpeg8_decode(data, colorspace="RGB", outcolorspace="RGB")
        return imagecodecs.jpeg8_decode(data)

    def encode_array(self, data: np.ndarray) -> bytes:
        quality = int(self.configuration.get("quality", 90))
        return bytes(imagecodecs.jpeg8_encode(_image(data), level=quality))


@dataclass(frozen=True)
class Jpeg2k(_Codec):
    """`numcodecs.imagecodecs_jpeg2k`: one JPEG 2000 codestream per chunk."""

    name: ClassVar[str] = "numcodecs.imagecodecs_jpeg2k"
    configuration: dict[str, Any] = field(default_factory=dict)

    def decode_bytes(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpeg2k_decode(data)

    def encode_array(self, data: np.ndarray) -> bytes:
        return bytes(imagecodecs.jpeg2k_encode(data, level=self.configuration.get("level")))


@dataclass(frozen=True)
class ImagecodecsJpeg(_Codec):
    """`numcodecs.imagecodecs_jpeg` of earlier slidegate releases: the TIFF JPEGTables and
    colour spaces in the configuration (imagecodecs' numcodecs Jpeg parameters)."""

    name: ClassVar[str] = "numcodecs.imagecodecs_jpeg"
    configuration: dict[str, Any] = field(default_factory=dict)

    def decode_bytes(self, data: bytes) -> np.ndarray:
        c = self.configuration
        tables = base64.b64decode(c["tables"]) if c.get("tables") else None
        header = base64.b64decode(c["header"]) if c.get("header") else None
        return imagecodecs.jpeg_decode(
            data, tables=tables, header=header, bitspersample=c.get("bitspersample"),
            colorspace=c.get("colorspace_jpeg"), outcolorspace=c.get("colorspace_data"),
        )  # fmt: skip

    def encode_array(self, data: np.ndarray) -> bytes:
        level = self.configuration.get("level")
        return bytes(imagecodecs.jpeg8_encode(_image(data), level=level))
