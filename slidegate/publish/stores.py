"""Where releases go: a local folder or an S3 bucket (AWS, SeaweedFS, MinIO...).

Keys are '/'-separated paths relative to the store root. S3 credentials come from boto3's
default chain (environment, AWS config/profile, instance role), never from arguments, so they
never end up in a log or a Prefect parameter. Error messages never contain a secret or a
server message; they name the operation, the target and the fix.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

from slidegate.errors import SpecError
from slidegate.publish.policy import PublishPolicy
from slidegate.settings import Settings

HASH_BLOCK = 4 * 1024 * 1024
PROBE_KEY = ".slidegate-probe"
TMP_PREFIX = ".slidegate-tmp-"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def check_key(key: str) -> str:
    """A key is a relative '/'-separated path without empty, '.' or '..' parts."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts) or any(c in key for c in "\\\n\r"):
        raise SpecError(f"invalid object key {key!r}: use a relative '/'-separated path")
    return key


@runtime_checkable
class Store(Protocol):
    def put_file(self, key: str, path: Path, sha256: str) -> None: ...

    def put_bytes(self, key: str, data: bytes, sha256: str, *, lock: bool = True) -> None:
        """`lock=False`: no Object Lock retention (a probe that is deleted right away)."""
        ...

    def head_sha256(self, key: str) -> str | None:
        """The recorded sha256 of an object ("" if none recorded); None when it is absent."""
        ...

    def hash_object(self, key: str) -> str | None:
        """sha256 of the stored bytes (reads them all); None when the object is absent."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under the folder `prefix` ('' = everything), sorted."""
        ...

    def list_children(self, prefix: str) -> list[str]:
        """Names of the immediate sub-folders of `prefix` ('' = the root), sorted."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def describe(self) -> str:
        """The target as a URL or path, without credentials."""
        ...


class LocalStore:
    """A folder. Writes go to a temporary name in the same folder, then os.replace (atomic)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _dir(self, prefix: str) -> Path:
        p = prefix.strip("/")
        return self._path(p) if p else self.root

    @contextmanager
    def _errors(self, op: str) -> Iterator[None]:
        try:
            yield
        except PermissionError:
            raise SpecError(
                f"permission denied for {op} in {self.describe()}: make the folder writable "
                "by this user or choose another target",
                reason="target not writable",
            ) from None

    def _write(self, key: str, fill: Callable[[Path], object]) -> None:
        dest = self._path(key)
        with self._errors("write"):
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}")
            try:
                fill(tmp)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        self._write(key, lambda tmp: shutil.copyfile(path, tmp))

    def put_bytes(self, key: str, data: bytes, sha256: str, *, lock: bool = True) -> None:
        self._write(key, lambda tmp: tmp.write_bytes(data))

    def head_sha256(self, key: str) -> str | None:
        return self.hash_object(key)  # a folder records no metadata: hash the bytes

    def hash_object(self, key: str) -> str | None:
        path = self._path(key)
        if not path.is_file():
            return None
        with self._errors("read"):
            return sha256_file(path)

    def list_keys(self, prefix: str) -> list[str]:
        base = self._dir(prefix)
        if not base.is_dir():
            return []
        with self._errors("list"):
            return sorted(
                p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file()
            )

    def list_children(self, prefix: str) -> list[str]:
        base = self._dir(prefix)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def get_bytes(self, key: str) -> bytes:
        with self._errors("read"):
            return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        with self._errors("delete"):
            self._path(key).unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.root)


def open_store(target: str, settings: Settings, publish: PublishPolicy | None = None) -> Store:
    """`s3://bucket/prefix` -> S3Store; a folder path (or file://path) -> LocalStore.
    `publish` (the profile's Object Lock / encryption settings) needs an S3 target."""
    if target.startswith("s3://"):
        bucket, _, prefix = target[len("s3://") :].partition("/")
        if not bucket:
            raise SpecError(f"target {target!r} has no bucket name: use s3://bucket/prefix")
        from slidegate.publish.s3 import S3Store, s3_client  # S3 code imports this module

        client = s3_client(settings)
        return S3Store(
            bucket, prefix, client, concurrency=settings.upload_concurrency, publish=publish
        )
    if "://" in target and not target.startswith("file://"):
        raise SpecError(f"unsupported target scheme in {target!r}: use a folder or s3://...")
    if publish is not None and publish.active:
        raise SpecError(
            f"the profile's publish settings (object_lock, encryption) need an S3 target, but "
            f"the target {target!r} is a local folder: publish to s3://bucket/prefix, or use a "
            "profile without a `publish:` section",
            reason="publish settings need S3",
        )
    return LocalStore(Path(target.removeprefix("file://")))


def check_writable(store: Store, release: str) -> None:
    """List the release, then put and delete a small probe object under it: a missing bucket,
    wrong or read-only credentials fail here, before any conversion work."""
    key = f"{check_key(release)}/{PROBE_KEY}"
    store.list_keys(release)  # read access, and a missing bucket (some servers create on PUT)
    data = b"slidegate write probe\n"
    store.put_bytes(key, data, hashlib.sha256(data).hexdigest(), lock=False)
    store.delete(key)
