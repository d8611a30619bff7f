"""S3 (AWS, SeaweedFS, MinIO...): the store, the client recipe, server-side copies.

Credentials come from the settings (a Prefect block resolved at the edge) or boto3's default
chain (environment, AWS config/profile, instance role), never from a spec file. Error messages
never contain a secret or a server message; they name the operation, the target and the fix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from slidegate.errors import SpecError, TransientIOError
from slidegate.publish.policy import PublishPolicy
from slidegate.publish.stores import HASH_BLOCK, Store, check_key
from slidegate.settings import Settings

_DENIED = {
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
    "InvalidClientTokenId",
    "403",
    "401",
}
_NO_BUCKET = {"NoSuchBucket"}
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_TRANSIENT = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
}


def _client_error_code(exc: BaseException) -> tuple[str, int]:
    """Error code and HTTP status of a botocore ClientError found in the exception chain."""
    from botocore.exceptions import ClientError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            err = seen.response.get("Error", {})
            meta = seen.response.get("ResponseMetadata", {})
            return str(err.get("Code", "")), int(meta.get("HTTPStatusCode", 0) or 0)
        seen = seen.__cause__ or seen.__context__
    return "", 0


def _upload_failed_code(exc: BaseException) -> str:
    """boto3's S3UploadFailedError only carries the ClientError as text: '... (Code) ...'."""
    text = str(exc)
    for code in sorted(_DENIED | _NO_BUCKET | _TRANSIENT, key=len, reverse=True):
        if f"({code})" in text:
            return code
    return ""


class S3Store:
    """Objects under s3://bucket/prefix. Uploads use managed multipart and record the sha256
    in the object metadata (`x-amz-meta-sha256`); the profile's `publish:` settings (Object
    Lock retention, server-side encryption) go with every put, multipart included."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        client: Any,
        *,
        concurrency: int = 4,
        publish: PublishPolicy | None = None,
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.publish = publish or PublishPolicy()
        self.transfer = TransferConfig(
            multipart_threshold=16 * 1024 * 1024,
            multipart_chunksize=16 * 1024 * 1024,
            max_concurrency=max(1, concurrency),
        )

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _strip(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @contextmanager
    def _errors(self, op: str) -> Iterator[None]:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = self.describe()
        try:
            yield
        except (NoCredentialsError, PartialCredentialsError):
            raise SpecError(
                f"no usable S3 credentials for {op} on {where}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, for this target",
                reason="storage credentials missing",
            ) from None
        except (ClientError, S3UploadFailedError) as exc:
            code, status = _client_error_code(exc)
            if not code and isinstance(exc, S3UploadFailedError):
                code = _upload_failed_code(exc)
            raise self._mapped(op, code, status) from None
        except BotoCoreError as exc:  # connection refused, timeouts, bad endpoint
            raise TransientIOError(
                f"S3 {op} on {where} failed: cannot reach the endpoint ({type(exc).__name__}); "
                "check the endpoint URL and the network, then retry",
                reason="storage unreachable",
            ) from None

    def _mapped(self, op: str, code: str, status: int) -> Exception:
        where = self.describe()
        what = code or str(status)
        if code in _DENIED or status in (401, 403):
            return SpecError(
                f"S3 refused {op} on {where} ({what}): the credentials are wrong or lack "
                "permission; use credentials with read, list, write and delete access to this "
                "bucket and prefix (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)",
                reason="storage access denied",
            )
        if code in _NO_BUCKET:
            return SpecError(
                f"bucket {self.bucket!r} does not exist at the S3 endpoint: create it or fix "
                "the target",
                reason="storage bucket missing",
            )
        if code in _TRANSIENT or status >= 500 or status == 429:
            return TransientIOError(
                f"S3 {op} on {where} failed ({what}); retry later", reason="storage unavailable"
            )
        return TransientIOError(f"S3 {op} on {where} failed ({what})", reason="storage error")

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        with self._errors("upload"):
            self.client.upload_file(
                str(path),
                self.bucket,
                self._key(key),
                ExtraArgs={"Metadata": {"sha256": sha256}, **self.publish.put_args()},
                Config=self.transfer,
            )

    def put_bytes(self, key: str, data: bytes, sha256: str, *, lock: bool = True) -> None:
        with self._errors("upload"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                Metadata={"sha256": sha256},
                **self.publish.put_args(lock=lock),
            )

    def object_lock_enabled(self) -> bool:
        """Whether the bucket was created with Object Lock enabled."""
        with self._errors("read the Object Lock configuration of"):
            try:
                conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
            except Exception as exc:
                code, _ = _client_error_code(exc)
                if code == "ObjectLockConfigurationNotFoundError":
                    return False
                raise
        return conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def head_sha256(self, key: str) -> str | None:
        with self._errors("head"):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except Exception as exc:
                code, status = _client_error_code(exc)
                if status == 404 or code in _NOT_FOUND:
                    return None
                raise
        value = head.get("Metadata", {}).get("sha256")
        return str(value) if value else ""

    def hash_object(self, key: str) -> str | None:
        h = hashlib.sha256()
        with self._errors("download"):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            except Exception as exc:
                code, status = _client_error_code(exc)
                if status == 404 or code in _NOT_FOUND:
                    return None
                raise
            for block in body.iter_chunks(HASH_BLOCK):
                h.update(block)
        return h.hexdigest()

    def _pages(self, prefix: str, delimiter: str | None) -> Iterator[dict[str, Any]]:
        parts = [p for p in (self.prefix, prefix.strip("/")) if p]
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": "/".join(parts) + "/" if parts else "",
        }
        if delimiter:
            kwargs["Delimiter"] = delimiter
        with self._errors("list"):
            yield from self.client.get_paginator("list_objects_v2").paginate(**kwargs)

    def list_keys(self, prefix: str) -> list[str]:
        pages = self._pages(prefix, None)
        return sorted(self._strip(o["Key"]) for page in pages for o in page.get("Contents", []))

    def list_children(self, prefix: str) -> list[str]:
        pages = self._pages(prefix, "/")
        return sorted(
            cp["Prefix"].rstrip("/").rsplit("/", 1)[-1]
            for page in pages
            for cp in page.get("CommonPrefixes", [])
        )

    def get_bytes(self, key: str) -> bytes:
        with self._errors("download"):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            data: bytes = body.read()
        return data

    def delete(self, key: str) -> None:
        with self._errors("delete"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the settings' endpoint: path-style, standard retries, credentials
    from the settings (resolved from a Prefect block at the edge) or else boto3's chain."""
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "max_attempts": max(1, settings.s3_max_attempts)},
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=max(10, settings.upload_concurrency * 4),
    )
    return s3_session(settings).client(
        "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region, config=config
    )


def s3_session(settings: Settings) -> Any:
    """A boto3 session with the settings' credentials (from a Prefect block, resolved at the
    edge), else boto3's default chain. Also for obstore's Boto3CredentialProvider(session)."""
    import boto3

    creds = settings.s3_credentials
    if creds is None:
        return boto3.session.Session()
    token = creds.session_token
    return boto3.session.Session(
        aws_access_key_id=creds.access_key_id.get_secret_value(),
        aws_secret_access_key=creds.secret_access_key.get_secret_value(),
        aws_session_token=token.get_secret_value() if token is not None else None,
    )


def copy_object(src: S3Store, key: str, dst: Store, dst_key: str) -> tuple[str, int, bool]:
    """Copy one object and its sha256 metadata from `src` to `dst` (staging -> release):
    server-side CopyObject when both are on the same S3 endpoint, streamed otherwise. Skipped
    when `dst` already holds it with that sha256. Returns (sha256, size, copied)."""
    with src._errors("head"):
        head = src.client.head_object(Bucket=src.bucket, Key=src._key(key))
    sha = str(head.get("Metadata", {}).get("sha256") or src.hash_object(key) or "")
    size = int(head["ContentLength"])
    if dst.head_sha256(dst_key) == sha:
        return sha, size, False
    same_endpoint = isinstance(dst, S3Store) and (
        dst.client.meta.endpoint_url == src.client.meta.endpoint_url
    )
    if isinstance(dst, S3Store) and same_endpoint:
        with dst._errors("upload"):
            dst.client.copy_object(
                CopySource={"Bucket": src.bucket, "Key": src._key(key)},
                Bucket=dst.bucket,
                Key=dst._key(dst_key),
                Metadata={"sha256": sha},
                MetadataDirective="REPLACE",
                **dst.publish.put_args(),  # the profile's Object Lock and encryption
            )
    else:
        dst.put_bytes(dst_key, src.get_bytes(key), sha)
    return sha, size, True
