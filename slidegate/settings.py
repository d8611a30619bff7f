"""Frozen settings, built once at the edge (CLI, flow parameters) and passed down explicitly.

This is the only module that knows the `SLIDEGATE_*` environment names, and it reads an
environment mapping it is handed; it never touches `os.environ` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from slidegate.errors import SpecError

#: the repository's policies/ folder (editable install) is the default policy library
DEFAULT_POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"


@dataclass(frozen=True)
class S3Credentials:
    """S3 keys resolved at the edge (flows/credentials.py, from a Prefect block). The values
    are SecretStr: repr, str and Prefect's JSON of the settings show `**********`; pickling
    (to Dask workers) keeps them."""

    access_key_id: SecretStr
    secret_access_key: SecretStr
    session_token: SecretStr | None = None


@dataclass(frozen=True)
class Settings:
    """Everything a run needs that is not in the release spec."""

    #: private working area: keys, facts, staging, private reports. Never under a target.
    work_dir: Path = Path(".slidegate")
    #: where profiles and policies are looked up
    policies_dir: Path = DEFAULT_POLICIES_DIR
    #: an existing Dask scheduler (tcp://host:port); None starts a LocalCluster
    dask_address: str | None = None
    n_workers: int = 2
    threads_per_worker: int = 1
    #: decoder / encoder threads of one slide's conversion; 0: the worker's share of the cores
    #: (`slide_threads`: cores // (n_workers * threads_per_worker), at least 1)
    slide_threads: int = 0
    #: S3-compatible endpoint (SeaweedFS, MinIO...); None means AWS
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    #: parallel uploads per slide
    upload_concurrency: int = 4
    #: time limit of each read of a slide in its child process (inventory, convert, audit's
    #: re-open); a slide over it is quarantined ("limit: time bound exceeded"), the rest goes on
    slide_timeout_s: int = 1800
    #: address space (MiB) of the child process that reads and converts one slide (RLIMIT_AS;
    #: `slidegate.bounded`); a slide over it is quarantined. 0: no memory bound
    slide_memory_mb: int = 8192
    #: "process": each slide's read/convert runs in a reusable child process bounded by
    #: slide_timeout_s and slide_memory_mb (killed at the bound); "off": in the worker itself
    slide_isolation: str = "process"
    #: a Dask cluster spec by name (deploy/dask/<name>.yaml) used when no dask_address is given
    cluster: str | None = None
    #: publish task retries after a storage failure, with exponential backoff from the delay
    publish_retries: int = 3
    publish_retry_delay_s: int = 5
    #: attempts per S3 request inside boto3 (its own backoff), before a task-level retry
    s3_max_attempts: int = 5
    #: private S3 prefix (s3://bucket/prefix) for audited outputs instead of the work area
    staging_url: str | None = None
    #: S3 credentials from a Prefect block: a `Secret` block name, or `aws-credentials/NAME`
    #: (prefect-aws). None: boto3's chain (environment, AWS config profile, instance role)
    s3_credentials_block: str | None = None
    #: the block's keys, filled in at the edge; never read from the environment or a spec
    s3_credentials: S3Credentials | None = field(default=None, metadata={"env": False})
    #: the steward registry (cross-release ledger, pseudonym keys, release records, slide state
    #: for resume): a SQLAlchemy URL, `sqlite:///PATH` or `postgresql://user@host/db`. Default:
    #: SQLite in the per-user data folder (platformdirs), resolved when the settings are built
    registry_url: str = field(default_factory=lambda: default_registry_url())
    #: 64 hex digits: the key that encrypts pseudonym keys at rest in the registry. None: with
    #: SQLite a key file beside the database (mode 0600); PostgreSQL needs it
    registry_key: SecretStr | None = None
    #: a Prefect `Secret` block holding `registry_key`, resolved by the flows
    registry_key_block: str | None = None
    #: seconds a release waits for another release into the same target to finish (0: stop)
    registry_lock_wait_s: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Build settings from `SLIDEGATE_<FIELD>` variables, then explicit overrides."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.metadata.get("env") is False:
                continue
            raw = env.get(f"SLIDEGATE_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)


def _coerce(name: str, type_name: object, raw: str) -> Any:
    t = str(type_name)
    if "SecretStr" in t:
        return SecretStr(raw)
    try:
        if "Path" in t:
            return Path(raw)
        if t.startswith("int"):
            return int(raw)
        return raw
    except ValueError as exc:
        raise SpecError(
            f"SLIDEGATE_{name.upper()} must be a whole number, got {raw!r}; fix the variable"
        ) from exc


def default_registry_url() -> str:
    """SQLite in the per-user data folder (`platformdirs`; on Linux $XDG_DATA_HOME/slidegate),
    never in a run's work area: every run of this user shares it."""
    from platformdirs import user_data_path

    return f"sqlite:///{user_data_path('slidegate', appauthor=False) / 'registry.sqlite'}"


def slide_threads(settings: Settings, cores: int) -> int:
    """Codec threads for one slide on a machine with `cores` usable cores: the explicit
    `settings.slide_threads`, else that machine's cores shared by the slides that run at once
    (one per worker thread), at least 1."""
    if settings.slide_threads > 0:
        return settings.slide_threads
    at_once = max(1, settings.n_workers) * max(1, settings.threads_per_worker)
    return max(1, cores // at_once)
