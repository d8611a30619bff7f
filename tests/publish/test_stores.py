"""Stores against a real SeaweedFS (credentials from boto3's default chain) and a folder."""

from __future__ import annotations

import hashlib
import os
import traceback
from pathlib import Path

import pytest

from slidegate.errors import SpecError, TransientIOError
from slidegate.publish.s3 import S3Store
from slidegate.publish.stores import LocalStore, check_writable, open_store
from slidegate.settings import Settings
from tests.publish.conftest import unique_prefix
from tests.services import S3Service, free_ports


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point boto3's default chain at environment variables only (no profile, no IMDS)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def use(env: dict[str, str]) -> None:
        for k, v in env.items():
            monkeypatch.setenv(k, v)

    return use


def _full_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_open_store_s3_writes_with_default_chain(
    s3_service: S3Service, s3_bucket: str, aws_env
) -> None:
    aws_env(s3_service.env())
    prefix = unique_prefix()
    settings = Settings(s3_endpoint_url=s3_service.endpoint_url)
    store = open_store(f"s3://{s3_bucket}/{prefix}", settings)
    assert isinstance(store, S3Store)
    assert store.describe() == f"s3://{s3_bucket}/{prefix}"
    check_writable(store, "r1")
    assert store.list_keys("") == []  # the probe is gone
    raw = s3_service.client().list_objects_v2(Bucket=s3_bucket, Prefix=prefix)
    assert raw.get("KeyCount", 0) == 0
    store.put_bytes("r1/a.txt", b"hello", "abc")
    got = s3_service.client().get_object(Bucket=s3_bucket, Key=f"{prefix}/r1/a.txt")
    assert got["Body"].read() == b"hello"
    assert store.head_sha256("r1/a.txt") == "abc"
    assert store.head_sha256("r1/missing") is None
    assert store.hash_object("r1/missing") is None
    assert store.list_children("") == ["r1"]


def test_multipart_upload_keeps_the_checksum(
    s3_service: S3Service, s3_bucket: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(17 * 1024 * 1024))  # above the 16 MB multipart threshold
    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    store = S3Store(s3_bucket, unique_prefix(), s3_service.client())
    store.put_file("r/big.bin", big, sha)
    assert store.head_sha256("r/big.bin") == sha
    assert store.hash_object("r/big.bin") == sha


def test_read_only_credentials_fail_the_probe_clearly(
    s3_service: S3Service, s3_bucket: str, aws_env
) -> None:
    bucket = s3_bucket
    aws_env(s3_service.env(readonly=True))
    store = open_store(f"s3://{bucket}/x", Settings(s3_endpoint_url=s3_service.endpoint_url))
    with pytest.raises(SpecError) as info:
        check_writable(store, "r1")
    message = str(info.value)
    assert "AccessDenied" in message and f"s3://{bucket}/x" in message
    assert "write" in message and "AWS_ACCESS_KEY_ID" in message  # names the fix
    assert info.value.reason == "storage access denied"
    assert s3_service.readonly_secret_key not in _full_text(info.value)
    assert s3_service.secret_key not in _full_text(info.value)


def test_wrong_secret_and_missing_bucket(s3_service: S3Service, s3_bucket: str, aws_env) -> None:
    aws_env({"AWS_ACCESS_KEY_ID": s3_service.access_key, "AWS_SECRET_ACCESS_KEY": "wrong-1234"})
    settings = Settings(s3_endpoint_url=s3_service.endpoint_url)
    with pytest.raises(SpecError, match="credentials are wrong") as info:
        check_writable(open_store(f"s3://{s3_bucket}", settings), "r1")
    assert "wrong-1234" not in _full_text(info.value)

    aws_env(s3_service.env())
    with pytest.raises(SpecError, match="bucket 'no-such-bucket' does not exist"):
        check_writable(open_store("s3://no-such-bucket/p", settings), "r1")


def test_unreachable_endpoint_is_transient(aws_env) -> None:
    aws_env({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    (port,) = free_ports(1)  # nothing listens there
    settings = Settings(s3_endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(TransientIOError, match="cannot reach the endpoint"):
        open_store("s3://bucket/p", settings).head_sha256("k")


def test_local_store_basics(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "t"), Settings())
    assert isinstance(store, LocalStore)
    check_writable(store, "r1")
    assert store.list_keys("") == []
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    store.put_file("r1/a/b.bin", src, "ignored")
    assert (tmp_path / "t" / "r1" / "a" / "b.bin").read_bytes() == b"abc"
    assert store.head_sha256("r1/a/b.bin") == hashlib.sha256(b"abc").hexdigest()
    assert store.list_keys("r1") == ["r1/a/b.bin"]
    assert store.list_children("") == ["r1"]
    assert not [p for p in (tmp_path / "t").rglob("*") if p.name.startswith(".slidegate")]
    with pytest.raises(SpecError, match="unsupported target scheme"):
        open_store("gs://bucket/x", Settings())


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_local_store_read_only_folder(tmp_path: Path) -> None:
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(0o555)
    try:
        with pytest.raises(SpecError, match="permission denied"):
            check_writable(LocalStore(target), "r1")
    finally:
        target.chmod(0o755)
