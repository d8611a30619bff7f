"""S3 credentials from a Prefect block, resolved at the edge (inside the flow, which talks to
the Prefect API); the core only ever sees `slidegate.settings.S3Credentials` (SecretStr values).

`Settings.s3_credentials_block` (`--s3-credentials-block`, `SLIDEGATE_S3_CREDENTIALS_BLOCK`):
- `NAME` or `secret/NAME`: a Prefect `Secret` block whose value is a JSON object
  `{"aws_access_key_id": ..., "aws_secret_access_key": ..., "aws_session_token": ...}`
  (the token is optional);
- `aws-credentials/NAME`: a prefect-aws `AwsCredentials` block document (read through the API;
  prefect-aws itself need not be installed here).

Nothing here logs, returns or raises a value: errors name the block and the key, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import SecretStr

from slidegate.errors import SpecError
from slidegate.settings import S3Credentials, Settings

KEYS = ("aws_access_key_id", "aws_secret_access_key")
TOKEN = "aws_session_token"


def resolve_credentials(settings: Settings) -> Settings:
    """Settings with `s3_credentials` filled from the named block (unchanged without one)."""
    name = settings.s3_credentials_block
    if not name or settings.s3_credentials is not None:
        return settings
    kind, _, block = name.rpartition("/")
    kind = kind or "secret"
    if kind == "secret":
        data = _secret_block(block, name)
    elif kind == "aws-credentials":
        data = _aws_credentials_block(block, name)
    else:
        raise SpecError(
            f"S3 credentials block {name!r}: unknown block type {kind!r}; use a Secret block "
            "name (`NAME` or `secret/NAME`) or `aws-credentials/NAME`",
            reason="credentials block invalid",
        )
    return replace(settings, s3_credentials=_credentials(data, name))


def _secret_block(block: str, name: str) -> Any:
    from prefect.blocks.system import Secret

    try:
        secret: Secret[Any] = Secret.load(block, _sync=True)  # type: ignore[assignment,call-arg]
    except (ValueError, LookupError):
        raise _missing(name, "Secret") from None
    return secret.get()


def _aws_credentials_block(block: str, name: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            doc = client.read_block_document_by_name(
                name=block, block_type_slug="aws-credentials", include_secrets=True
            )
        except ObjectNotFound:
            raise _missing(name, "AwsCredentials") from None
    return doc.data


def _missing(name: str, kind: str) -> SpecError:
    return SpecError(
        f"S3 credentials block {name!r} ({kind}) not found on the Prefect server: create it "
        "(see README, 'Credentials') or fix --s3-credentials-block",
        reason="credentials block missing",
    )


def _credentials(data: Any, name: str) -> S3Credentials:
    if not isinstance(data, Mapping):
        raise SpecError(
            f"S3 credentials block {name!r} must hold a JSON object with the keys "
            f"{', '.join(KEYS)} (and optionally {TOKEN})",
            reason="credentials block invalid",
        )
    missing = [k for k in KEYS if not _plain(data.get(k))]
    if missing:
        raise SpecError(
            f"S3 credentials block {name!r} has no value for {', '.join(missing)}: add it to "
            "the block",
            reason="credentials block invalid",
        )
    token = _plain(data.get(TOKEN))
    return S3Credentials(
        access_key_id=SecretStr(_plain(data[KEYS[0]])),
        secret_access_key=SecretStr(_plain(data[KEYS[1]])),
        session_token=SecretStr(token) if token else None,
    )


def _plain(value: Any) -> str:
    """A block field as text: SecretStr (prefect-aws stores the secret key as one) or str."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value if isinstance(value, str) else ""
