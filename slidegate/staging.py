"""Staging on S3: audited outputs kept under a private prefix instead of the work area.

With `Settings.staging_url` (e.g. `s3://private-bucket/staging`, private to the steward), a
slide's OME-Zarr, once it has passed its audit, is uploaded to
`<staging_url>/<release>/<pseudonym>.ome.zarr/` (sha256 in each object's metadata) and the local
copy is removed; the slide report's `output_path` then names the staged prefix. The cohort
stage reads the staged outputs there (zarr over obstore), and publishing copies them to the
target (server-side CopyObject on the same endpoint, streamed otherwise).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from slidegate.egress.gate import Gate
from slidegate.egress.matcher import Matcher
from slidegate.errors import SpecError
from slidegate.publish.release import ObjectRecord, load_manifest, publish_files, publish_tree
from slidegate.publish.s3 import S3Store, s3_session
from slidegate.publish.stores import open_store
from slidegate.settings import Settings
from slidegate.sources import is_s3, parse_s3


def stage_out(
    local: Path, settings: Settings, release: str, name: str, admitted: Iterable[str] = ()
) -> str:
    """Upload an audited output (a folder, or one file: the original-format copy) to
    `<staging>/<release>/<name>/`, remove the local one; return the new location. Without
    `staging_url` the output stays where it is. Only objects whose sha256 the egress gate
    admitted after the audit (`admitted`) are uploaded; anything else is refused."""
    if not settings.staging_url:
        return str(local)
    store = open_store(settings.staging_url, settings)
    if not isinstance(store, S3Store):
        raise SpecError(
            f"staging {settings.staging_url!r} must be s3://bucket/prefix (a private prefix); "
            "unset SLIDEGATE_STAGING_URL to stage in the work area"
        )
    gate = Gate(store, Matcher([]), admitted)  # keys were checked at admission
    if local.is_dir():
        publish_tree(
            gate,
            release,
            local,
            name,
            concurrency=settings.upload_concurrency,
            admitted_only=True,
        )
        shutil.rmtree(local)
    else:  # a single file keeps its own name under the prefix
        publish_files(gate, release, {f"{name}/{local.name}": local}, admitted_only=True)
        local.unlink()
    return f"{store.describe()}/{release}/{name}"


def open_staged(location: str, settings: Settings) -> Any:
    """A read-only zarr group over a staged output: a local folder, or a staged S3 prefix
    (obstore; the settings' credentials, else boto3's chain; the settings' endpoint)."""
    import zarr

    from slidegate.convert import register

    register()  # pass-through outputs use imagecodecs' JPEG / JPEG 2000 codecs
    if not is_s3(location):
        return zarr.open_group(location, mode="r")
    from obstore.auth.boto3 import Boto3CredentialProvider
    from obstore.store import S3Store as ObjectStoreS3
    from zarr.storage import ObjectStore

    ref = parse_s3(location, settings)
    endpoint = settings.s3_endpoint_url
    config: Any = {"region": settings.s3_region, "virtual_hosted_style_request": False}
    if endpoint:
        config["endpoint"] = endpoint
    store = ObjectStoreS3(
        ref.bucket,
        prefix=ref.key,
        config=config,
        credential_provider=Boto3CredentialProvider(s3_session(settings)),
        client_options={"allow_http": bool(endpoint and endpoint.startswith("http://"))},
    )
    return zarr.open_group(store=ObjectStore(store, read_only=True), mode="r")


def publish_staged(
    gate: Gate, release: str, location: str, dest: str, settings: Settings
) -> list[ObjectRecord]:
    """Copy a staged output (every object under `location`) to `<release>/<dest>/` on the
    target, through the egress gate (admitted objects only). Objects already there with the
    right sha256 are skipped (resume); a release that has a manifest is never changed."""
    target = gate.store
    source = open_store(location, settings)
    if not isinstance(source, S3Store):
        raise SpecError(f"staged output {location} is not on S3")
    keys = source.list_keys("")
    existing = load_manifest(target, release)
    listed = {o.get("path") for o in existing["objects"]} if existing is not None else None

    def copy(key: str) -> ObjectRecord:
        full = f"{dest}/{key}"
        if listed is not None and full not in listed:
            raise SpecError(
                f"release {release!r} already has a manifest and is immutable; choose a new "
                "release id"
            )
        sha, size, copied = gate.copy_staged(source, key, f"{release}/{full}")
        return ObjectRecord(full, size, sha, uploaded=copied)

    with ThreadPoolExecutor(max(1, settings.upload_concurrency)) as pool:
        return list(pool.map(copy, keys))
