"""Publishing: stores (local folder, S3), the release layout, manifest last, verification."""

from slidegate.publish.release import (
    ObjectRecord,
    list_releases,
    load_manifest,
    publish_files,
    publish_tree,
    verify_release,
    write_manifest,
)
from slidegate.publish.s3 import S3Store
from slidegate.publish.stores import LocalStore, Store, check_writable, open_store

__all__ = [
    "LocalStore",
    "ObjectRecord",
    "S3Store",
    "Store",
    "check_writable",
    "list_releases",
    "load_manifest",
    "open_store",
    "publish_files",
    "publish_tree",
    "verify_release",
    "write_manifest",
]
