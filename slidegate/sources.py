"""Where slides are read from: a local file or folder, or an object under `s3://bucket/prefix`.

A `SourceRef` is a local `Path` or an `S3Ref`. `open_binary` gives a seekable, read-only binary
file object for either: local files with `open(path, "rb")`, S3 objects with ranged GETs behind
a read-ahead buffer (`S3RangeFile`), so tifffile parses a TIFF-family slide on S3 reading only
the bytes it needs, on any worker, without a shared file system or a whole-file download.
Formats whose readers need a real path (CZI, MRXS, DICOM) are fetched by `slide_source()` into
a private scratch folder for the duration of one stage and removed afterwards. S3 objects are
only ever read (GET / HEAD / LIST); credentials come from boto3's chain, as for targets.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import posixpath
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from slidegate.errors import SpecError, TransientIOError
from slidegate.settings import Settings

#: read-ahead of the buffered S3 reader: one ranged GET fetches at least this much
READ_AHEAD = 64 * 1024
TIFF_MAGICS = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


@dataclass(frozen=True)
class S3Ref:
    """One object (or a folder-like prefix) on S3; `settings` give the endpoint and retries."""

    bucket: str
    key: str
    settings: Settings = field(compare=False, repr=False)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        return posixpath.basename(self.key.rstrip("/"))

    @property
    def suffix(self) -> str:
        return posixpath.splitext(self.name)[1]

    def child(self, relative: str) -> S3Ref:
        return S3Ref(self.bucket, posixpath.join(self.key, relative), self.settings)


SourceRef = Path | S3Ref


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def parse_s3(location: str, settings: Settings) -> S3Ref:
    """`s3://bucket/prefix` -> S3Ref (prefix without a trailing '/')."""
    bucket, _, key = location[len("s3://") :].partition("/")
    if not bucket:
        raise SpecError(f"source {location!r} has no bucket name: use s3://bucket/prefix")
    return S3Ref(bucket, key.strip("/"), settings)


def source_ref(location: str, settings: Settings) -> SourceRef:
    """A slide's recorded location (`SlideFacts.source_path`) back to a SourceRef."""
    return parse_s3(location, settings) if is_s3(location) else Path(location)


@functools.lru_cache(maxsize=8)
def _client(settings: Settings) -> Any:
    from slidegate.publish.s3 import s3_client  # one client recipe for sources and targets

    return s3_client(settings)


def client(ref: S3Ref) -> Any:
    return _client(ref.settings)


def _io_error(ref: S3Ref, op: str, exc: BaseException) -> TransientIOError:
    """An S3 failure (after boto3's own retries) naming the object and the operation, never
    credentials: transient, so the slide's task is retried instead of the slide quarantined."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
    return TransientIOError(
        f"cannot {op} source object {ref} ({code}); check the endpoint, the bucket and the "
        "credentials' read access",
        reason="source storage unavailable",
    )


def head_size(ref: S3Ref) -> int | None:
    """Size of the object, None if there is no such object."""
    from botocore.exceptions import ClientError

    try:
        head = client(ref).head_object(Bucket=ref.bucket, Key=ref.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _io_error(ref, "read", exc) from None
    except Exception as exc:  # endpoint down, timeouts
        raise _io_error(ref, "read", exc) from None
    return int(head["ContentLength"])


def list_keys(ref: S3Ref) -> list[str]:
    """Every object key under the prefix `ref.key/` (relative to it), sorted."""
    prefix = f"{ref.key}/" if ref.key else ""
    keys: list[str] = []
    try:
        pages = (
            client(ref).get_paginator("list_objects_v2").paginate(Bucket=ref.bucket, Prefix=prefix)
        )
        for page in pages:
            keys.extend(obj["Key"][len(prefix) :] for obj in page.get("Contents", []))
    except Exception as exc:
        raise _io_error(ref, "list", exc) from None
    return sorted(keys)


class S3RangeFile(io.RawIOBase):
    """A read-only, seekable raw file over one S3 object: every read is one ranged GET.
    Wrap it in `io.BufferedReader` (see `open_binary`) for read-ahead. Thread-safe `pread`."""

    #: bytes and GET requests fetched by every S3RangeFile of this process (proof of ranged reads)
    total_fetched = 0
    total_requests = 0
    _count_lock = threading.Lock()

    def __init__(self, ref: S3Ref) -> None:
        super().__init__()
        size = head_size(ref)
        if size is None:
            raise FileNotFoundError(f"no source object {ref}")
        self.ref, self.size, self._pos = ref, size, 0
        self.name = ref.name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def pread(self, offset: int, length: int) -> bytes:
        """`length` bytes at `offset` (fewer at the end), without moving the position."""
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        try:
            body = client(self.ref).get_object(
                Bucket=self.ref.bucket, Key=self.ref.key, Range=f"bytes={offset}-{end - 1}"
            )["Body"]
            data: bytes = body.read()
        except Exception as exc:
            raise _io_error(self.ref, "read", exc) from None
        with S3RangeFile._count_lock:
            S3RangeFile.total_fetched += len(data)
            S3RangeFile.total_requests += 1
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.pread(self._pos, len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def open_binary(ref: SourceRef | str) -> BinaryIO:
    """A read-only, seekable binary file object for a local file or an S3 object."""
    if isinstance(ref, Path | str):
        return open(ref, "rb")
    return io.BufferedReader(S3RangeFile(ref), buffer_size=READ_AHEAD)


def positional_reader(ref: SourceRef, handle: Any) -> Callable[[int, int], bytes]:
    """`read(offset, length)` without a shared file position: `os.pread` on the open local
    `handle` (a file object or tifffile's FileHandle), a ranged GET for an S3 object."""
    if isinstance(ref, S3Ref):
        return S3RangeFile(ref).pread
    fd = handle.fileno()
    return lambda offset, length: os.pread(fd, length, offset)


def stream_sha256(ref: S3Ref) -> tuple[str, int]:
    """sha256 and size of one object, streamed (never stored)."""
    digest, size = hashlib.sha256(), 0
    try:
        body = client(ref).get_object(Bucket=ref.bucket, Key=ref.key)["Body"]
        for chunk in body.iter_chunks(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    except Exception as exc:
        raise _io_error(ref, "read", exc) from None
    return digest.hexdigest(), size


def _is_tiff_object(ref: S3Ref) -> bool:
    with open_binary(ref) as fh:
        return fh.read(4) in TIFF_MAGICS


def fetch(ref: S3Ref, scratch: Path) -> Path:
    """Download an object (with the folder an `.mrxs` file needs beside it) or a folder-like
    prefix (a DICOM series) into `scratch`; returns the local path of the slide."""
    local = scratch / ref.name
    scratch.mkdir(parents=True, exist_ok=True)
    s3 = client(ref)
    try:
        if head_size(ref) is not None:
            s3.download_file(ref.bucket, ref.key, str(local))
            if ref.suffix.lower() == ".mrxs":  # MRXS: the .mrxs file and its folder
                folder = posixpath.splitext(ref.key)[0]
                _fetch_prefix(S3Ref(ref.bucket, folder, ref.settings), scratch / local.stem)
        else:
            _fetch_prefix(ref, local)
    except (OSError, TransientIOError):
        raise
    except Exception as exc:
        raise _io_error(ref, "download", exc) from None
    return local


def _fetch_prefix(ref: S3Ref, into: Path) -> None:
    for rel in list_keys(ref):
        dest = into / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        client(ref).download_file(ref.bucket, ref.child(rel).key, str(dest))


@contextmanager
def slide_source(location: SourceRef | str, settings: Settings, work: Path) -> Iterator[SourceRef]:
    """What a per-slide stage reads a slide from: the slide itself when a reader can use it in
    place (a local path; a TIFF-family object on S3, read with ranged GETs), else a private copy
    fetched into `<work>/scratch/` (CZI, MRXS, DICOM on S3), removed when the stage ends."""
    ref = source_ref(location, settings) if isinstance(location, str) else location
    if isinstance(ref, Path) or _read_in_place(ref):
        yield ref
        return
    (work / "scratch").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="slide-", dir=work / "scratch"))
    try:
        yield fetch(ref, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read_in_place(ref: S3Ref) -> bool:
    """An existing object with a TIFF header (a missing key is a folder-like prefix)."""
    return head_size(ref) is not None and _is_tiff_object(ref)
