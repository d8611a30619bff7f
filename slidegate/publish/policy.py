"""The profile's `publish:` section: Object Lock retention and server-side encryption of every
object put into an S3 target. Both are off by default; a local folder target supports neither.

    publish:
      object_lock: {mode: GOVERNANCE, retain_days: 3650}
      encryption: {sse: aws:kms, kms_key_id: arn:aws:kms:...}
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from slidegate.policy import StrictModel


class ObjectLock(StrictModel):
    """Every object is written with this retention (WORM): GOVERNANCE can be lifted by a user
    with s3:BypassGovernanceRetention, COMPLIANCE by nobody until it expires."""

    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    retain_days: int = Field(ge=1, le=36500)


class Encryption(StrictModel):
    """Server-side encryption: SSE-S3 (`AES256`) or SSE-KMS (`aws:kms`, optional key id; the
    bucket's default key without one)."""

    sse: Literal["AES256", "aws:kms"]
    kms_key_id: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _key_only_for_kms(self) -> Encryption:
        if self.kms_key_id is not None and self.sse != "aws:kms":
            raise ValueError("kms_key_id is only used with sse: aws:kms")
        return self


class PublishPolicy(StrictModel):
    object_lock: ObjectLock | None = None
    encryption: Encryption | None = None

    @property
    def active(self) -> bool:
        return self.object_lock is not None or self.encryption is not None

    def put_args(self, *, now: datetime | None = None, lock: bool = True) -> dict[str, Any]:
        """boto3 parameters for put_object / upload_file ExtraArgs (multipart uploads too).
        `lock=False` leaves the retention off (the target check's short-lived probe object)."""
        args: dict[str, Any] = {}
        if self.encryption is not None:
            args["ServerSideEncryption"] = self.encryption.sse
            if self.encryption.kms_key_id:
                args["SSEKMSKeyId"] = self.encryption.kms_key_id
        if self.object_lock is not None and lock:
            start = now or datetime.now(UTC)
            args["ObjectLockMode"] = self.object_lock.mode
            args["ObjectLockRetainUntilDate"] = start + timedelta(days=self.object_lock.retain_days)
        return args
