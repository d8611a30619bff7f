"""Server-side encryption from the profile. SSE-S3 (AES256) on a real SeaweedFS: single and
multipart puts are stored encrypted and head_object says so. SSE-KMS: SeaweedFS has no KMS
configured, so the test checks the request boto3 sends to it (a botocore event hook reads the
headers; the request still goes to SeaweedFS, which refuses it)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from slidegate.errors import SlidegateError
from slidegate.publish.policy import PublishPolicy
from slidegate.publish.s3 import S3Store
from tests.publish.conftest import unique_prefix
from tests.services import S3Service


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_sse_s3_on_every_put(s3_service: S3Service, s3_bucket: str, tmp_path: Path) -> None:
    policy = PublishPolicy.model_validate({"encryption": {"sse": "AES256"}})
    store = S3Store(s3_bucket, unique_prefix(), s3_service.client(), publish=policy)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(17 * 1024 * 1024))  # multipart (16 MB threshold)
    store.put_file("r/big.bin", big, _sha(big.read_bytes()))
    store.put_bytes("r/small.txt", b"hello", _sha(b"hello"))
    client = s3_service.client()
    for key in ("r/big.bin", "r/small.txt"):
        head = client.head_object(Bucket=s3_bucket, Key=f"{store.prefix}/{key}")
        assert head["ServerSideEncryption"] == "AES256"
    assert store.hash_object("r/big.bin") == _sha(big.read_bytes())  # reads back decrypted
    assert store.get_bytes("r/small.txt") == b"hello"


def test_sse_kms_headers_reach_the_server(
    s3_service: S3Service, s3_bucket: str, tmp_path: Path
) -> None:
    policy = PublishPolicy.model_validate(
        {"encryption": {"sse": "aws:kms", "kms_key_id": "alias/slidegate-test"}}
    )
    client = s3_service.client()
    sent: list[tuple[str, str, dict[str, str]]] = []

    def capture(request: Any, **_: Any) -> None:
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        sent.append((request.method, request.url, headers))

    client.meta.events.register("before-send.s3", capture)
    store = S3Store(s3_bucket, unique_prefix(), client, publish=policy)
    with pytest.raises(SlidegateError):  # SeaweedFS has no KMS: it refuses the put
        store.put_bytes("r/a.txt", b"x", _sha(b"x"))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(17 * 1024 * 1024))
    with pytest.raises(SlidegateError):
        store.put_file("r/big.bin", big, _sha(big.read_bytes()))
    # PUT object, then the multipart upload's CreateMultipartUpload (POST ?uploads)
    put = [h for method, url, h in sent if method == "PUT" and url.endswith("/r/a.txt")]
    create = [h for method, url, h in sent if method == "POST" and url.endswith("?uploads")]
    assert put and create, [(m, u) for m, u, _ in sent]
    for headers in (put[0], create[0]):
        assert headers["x-amz-server-side-encryption"] == "aws:kms"
        assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/slidegate-test"


def test_kms_key_only_with_kms() -> None:
    with pytest.raises(ValueError, match="only used with sse: aws:kms"):
        PublishPolicy.model_validate({"encryption": {"sse": "AES256", "kms_key_id": "k"}})
    with pytest.raises(ValueError, match="extra"):
        PublishPolicy.model_validate({"encryption": {"sse": "AES256", "algorithm": "x"}})
