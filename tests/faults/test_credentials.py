"""Wrong or read-only credentials: a clear error before any conversion work starts."""

from __future__ import annotations

from typing import Any

import pytest

from slidegate.errors import SpecError
from slidegate.settings import Settings
from tests.faults.helpers import RELEASE, fast, run_release, write_spec
from tests.services import S3Service

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("creds", ["read-only", "wrong-secret", "unknown-key"])
def test_bad_credentials_fail_before_conversion(
    creds: str,
    fault_cohort: Any,
    prefect_server: Any,
    s3_env: S3Service,
    fault_bucket: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, secret = {
        "read-only": (s3_env.readonly_access_key, s3_env.readonly_secret_key),
        "wrong-secret": (s3_env.access_key, "x" * 40),
        "unknown-key": ("AKIANOTAREALKEY00000", "y" * 40),
    }[creds]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)  # inherited by the Dask workers of this run
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    settings = fast(Settings(work_dir=tmp_path / "work", s3_endpoint_url=s3_env.endpoint_url))
    spec = write_spec(fault_cohort, f"s3://{fault_bucket}/creds-{creds}", f"creds-{creds}")
    with pytest.raises(SpecError) as failure:
        run_release(spec, settings)
    message = str(failure.value)
    assert "credentials are wrong or lack permission" in message
    assert f"s3://{fault_bucket}/creds-{creds}" in message
    assert secret not in message and s3_env.secret_key not in message
    # no conversion work started: no facts, no staging, nothing under the target
    work = settings.work_dir.resolve() / "releases" / RELEASE
    assert not (work / "staging").exists() and not (work / "private" / "facts").exists()
    listed = s3_env.client().list_objects_v2(Bucket=fault_bucket, Prefix=f"creds-{creds}/")
    assert listed.get("KeyCount", 0) == 0
