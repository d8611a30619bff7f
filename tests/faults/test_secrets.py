"""The S3 secret key never appears in logs, artifacts, reports or exceptions: five CLI runs
(read-only key, wrong secret, a good key from the environment, a Prefect Secret block with a
wrong and then with a good key and no AWS_* variables at all) and a grep of everything they
left behind, flow and task run parameters on the Prefect server included. The default run
does the wrong secret and the good block (a failure path and a success path); the other three
run under `slow` (`make test-all`)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.faults.helpers import RELEASE, write_spec
from tests.services import S3Service

pytestmark = pytest.mark.integration


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=300,
        check=False,
    )


def _prefect_texts() -> list[str]:
    """Every log line, artifact, flow run and task run (states, parameters) on the server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    texts: list[str] = []
    with get_client(sync_client=True) as client:
        offset = 0
        while batch := client.read_logs(log_filter=LogFilter(), limit=200, offset=offset):
            texts += [lg.message for lg in batch]
            offset += len(batch)
        texts += [json.dumps(a.model_dump(mode="json")) for a in client.read_artifacts()]
        texts += [json.dumps(r.model_dump(mode="json")) for r in client.read_flow_runs()]
        texts += [json.dumps(r.model_dump(mode="json")) for r in client.read_task_runs()]
    assert offset > 0
    return texts


EXPECTED = {"read-only": 2, "wrong": 2, "good": 0, "block-wrong": 2, "block": 0}


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(("wrong", "block"), id="wrong-and-block"),
        pytest.param(("read-only", "good", "block-wrong"), id="others", marks=pytest.mark.slow),
    ],
)
def test_secret_key_never_leaks(
    fault_cohort: Any,
    prefect_server: Any,
    s3_env: S3Service,
    fault_bucket: str,
    tmp_path: Path,
    names: tuple[str, ...],
) -> None:
    repo = Path(__file__).resolve().parents[2]
    wrong = "Wr0ng" + secrets.token_hex(18)
    base = {
        **os.environ,
        "PYTHONPATH": str(repo),
        "SLIDEGATE_PUBLISH_RETRIES": "1",
        "SLIDEGATE_PUBLISH_RETRY_DELAY_S": "1",
        "SLIDEGATE_S3_MAX_ATTEMPTS": "2",
    }
    from prefect.blocks.system import Secret

    keys = {"aws_access_key_id": s3_env.access_key}
    Secret(value={**keys, "aws_secret_access_key": wrong}).save("s3-wrong", overwrite=True)
    Secret(value={**keys, "aws_secret_access_key": s3_env.secret_key}).save(
        "s3-good", overwrite=True
    )
    # the block runs: no AWS_* keys, no AWS config files, no instance metadata: only the block
    no_chain = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env = {k: v for k, v in base.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    runs = {
        "read-only": ({**env, **s3_env.env(readonly=True)}, []),
        "wrong": (
            {**env, "AWS_ACCESS_KEY_ID": s3_env.access_key, "AWS_SECRET_ACCESS_KEY": wrong},
            [],
        ),
        "good": ({**env, **s3_env.env()}, []),
        "block-wrong": (env, ["--s3-credentials-block", "s3-wrong"]),
        "block": (
            {k: v for k, v in {**env, **no_chain}.items() if v},
            ["--s3-credentials-block", "secret/s3-good"],
        ),
    }
    outputs: dict[str, tuple[bytes, bytes]] = {}
    codes = {}
    for name, (run_env, extra) in runs.items():
        if name not in names:
            continue
        target = "secrets-block" if name.startswith("block") else "secrets"
        spec = write_spec(fault_cohort, f"s3://{fault_bucket}/{target}", target)
        work = tmp_path / f"work-{name}"
        # a registry per run: the same slides released twice would be blocked by the ledger
        run_env = {**run_env, "XDG_DATA_HOME": str(tmp_path / f"data-{name}")}
        args = ["release", str(spec), "--work-dir", str(work)]
        done = _cli([*args, "--s3-endpoint-url", s3_env.endpoint_url, *extra], run_env, tmp_path)
        codes[name] = done.returncode
        outputs[name] = (done.stdout, done.stderr)
    assert codes == {n: EXPECTED[n] for n in names}, [o[-2000:] for o in outputs.values()]
    denied = b"credentials are wrong or lack permission"
    for name in names:  # read-only, wrong secret, the block's wrong secret: on stderr
        assert (denied in outputs[name][1]) == (EXPECTED[name] == 2), name

    # everything a run leaves behind: console, work areas, the release, the Prefect server
    blobs = [o for pair in outputs.values() for o in pair]
    blobs += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    client = s3_env.client()
    published = {"secrets": "good", "secrets-block": "block"}
    for prefix in [p for p, run in published.items() if run in names]:
        listed = client.list_objects_v2(Bucket=fault_bucket, Prefix=f"{prefix}/{RELEASE}/")
        keys = [o["Key"] for o in listed.get("Contents", [])]
        assert f"{prefix}/{RELEASE}/manifest.json" in keys
        blobs += [client.get_object(Bucket=fault_bucket, Key=k)["Body"].read() for k in keys]
    texts = _prefect_texts()
    if "block" in names:
        assert any("s3-good" in t for t in texts)  # the block run's parameters: its name only
    blobs += [t.encode() for t in texts]
    for secret in (s3_env.secret_key, s3_env.readonly_secret_key, wrong):
        hits = [i for i, blob in enumerate(blobs) if secret.encode() in blob]
        assert hits == [], f"secret found in {len(hits)} output(s)"


def test_resolved_keys_are_masked_but_reach_workers() -> None:
    """What Prefect stores of a flow parameter (fastapi's jsonable_encoder), repr and str show
    `**********`; pickling (how Dask ships the settings to workers) keeps the keys."""
    import pickle

    from fastapi.encoders import jsonable_encoder
    from pydantic import SecretStr

    from slidegate.settings import S3Credentials, Settings

    secret = "Pl4nted" + secrets.token_hex(16)
    creds = S3Credentials(SecretStr("AKIDPLANTED"), SecretStr(secret), SecretStr(secret + "t"))
    settings = Settings(s3_credentials=creds)
    for shown in (json.dumps(jsonable_encoder(settings)), repr(settings), str(settings)):
        assert secret not in shown and "AKIDPLANTED" not in shown and "**********" in shown
    back = pickle.loads(pickle.dumps(settings))
    assert back.s3_credentials.secret_access_key.get_secret_value() == secret


def test_block_problems_name_the_block_never_a_value(prefect_server: Any) -> None:
    from dataclasses import replace

    from prefect.blocks.system import Secret

    from flows.credentials import resolve_credentials
    from slidegate.errors import SpecError
    from slidegate.settings import Settings

    secret = "Pl4nted" + secrets.token_hex(16)
    Secret(value=secret).save("s3-flat", overwrite=True)
    Secret(value={"aws_access_key_id": secret}).save("s3-half", overwrite=True)
    cases = {
        "s3-flat": "must hold a JSON object",
        "s3-half": "has no value for aws_secret_access_key",
        "s3-absent": "not found on the Prefect server",
        "aws-credentials/s3-absent": "not found on the Prefect server",
        "vault/s3-flat": "unknown block type 'vault'",
    }
    for name, expected in cases.items():
        with pytest.raises(SpecError) as info:
            resolve_credentials(Settings(s3_credentials_block=name))
        assert expected in str(info.value) and repr(name) in str(info.value)
        assert secret not in str(info.value) and info.value.__cause__ is None
    assert resolve_credentials(Settings()) == Settings()  # no block: boto3's chain
    creds = {"aws_access_key_id": "AKIDX", "aws_secret_access_key": secret}
    Secret(value=creds).save("s3-ok", overwrite=True)
    got = resolve_credentials(Settings(s3_credentials_block="s3-ok")).s3_credentials
    assert got is not None and got.secret_access_key.get_secret_value() == secret
    assert got.session_token is None
    unchanged = replace(Settings(s3_credentials_block="s3-absent"), s3_credentials=got)
    assert resolve_credentials(unchanged) is unchanged  # resolved once, at the edge


def test_aws_credentials_block_document(prefect_server: Any) -> None:
    """An `aws-credentials` block document as prefect-aws saves it (the secret key a SecretStr
    field), read through the API without prefect-aws installed."""
    from prefect.blocks.core import Block
    from pydantic import SecretStr

    from flows.credentials import resolve_credentials
    from slidegate.settings import Settings

    class AwsCredentials(Block):  # the fields of prefect_aws.AwsCredentials that matter here
        _block_type_name = "AWS Credentials"
        _block_type_slug = "aws-credentials"
        aws_access_key_id: str | None = None
        aws_secret_access_key: SecretStr | None = None
        aws_session_token: str | None = None
        region_name: str | None = None

    secret = "Pl4nted" + secrets.token_hex(16)
    AwsCredentials(aws_access_key_id="AKIDB", aws_secret_access_key=SecretStr(secret)).save(
        "s3-aws", overwrite=True
    )
    got = resolve_credentials(Settings(s3_credentials_block="aws-credentials/s3-aws"))
    creds = got.s3_credentials
    assert creds is not None and creds.access_key_id.get_secret_value() == "AKIDB"
    assert creds.secret_access_key.get_secret_value() == secret and creds.session_token is None
