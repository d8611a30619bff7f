"""Helpers of the fault and scale-out tests: run a release, compare releases."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from slidegate.settings import Settings
from slidegate.stages.context import key_path
from tests.services import S3Service

RELEASE = "fault-1"

#: fast failure in tests: 2 task retries after 1 s and 4 s, 2 attempts per S3 request
FAST = {"publish_retries": 2, "publish_retry_delay_s": 1, "s3_max_attempts": 2}


def write_spec(cohort: Any, target: str, name: str, release: str = RELEASE) -> Path:
    """restricted: the 3-patient synthetic cohort is not releasable under open access (EMA 0.09)."""
    spec = cohort.root / f"{name}.yaml"
    spec.write_text(
        f"release: {release}\nsource: slides\ncohort: cohort.csv\nprofile: restricted\n"
        f"target: {target}\ncanaries: canaries.json\n",
        encoding="utf-8",
    )
    return spec


def run_release(spec: Path, settings: Settings, *, dry_run: bool = False) -> dict[str, Any]:
    from flows.release import dask_runner, release_cohort

    result: dict[str, Any] = release_cohort.with_options(task_runner=dask_runner(settings))(
        spec=str(spec), dry_run=dry_run, settings=settings
    )
    return result


def share_key(src: Settings, dst: Settings, release: str = RELEASE) -> None:
    """Same pseudonym key -> same pseudonyms -> comparable releases."""
    target = key_path(dst, release)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(key_path(src, release), target)


def manifest_of(s3: S3Service, bucket: str, prefix: str, release: str = RELEASE) -> Any:
    body = s3.client().get_object(Bucket=bucket, Key=f"{prefix}/{release}/manifest.json")["Body"]
    return json.loads(body.read())


def comparable(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest without its creation time: every object's checksum (the GX Data Docs pages
    included: they are byte-deterministic) and the SHA256SUMS checksum are compared."""
    return {k: v for k, v in manifest.items() if k != "created"}


def fast(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **{**FAST, **changes})


def differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Object paths whose checksum (or presence) differs between two manifests."""
    sa = {o["path"]: o["sha256"] for o in a["objects"]}
    sb = {o["path"]: o["sha256"] for o in b["objects"]}
    return sorted(p for p in sa.keys() | sb.keys() if sa.get(p) != sb.get(p))
