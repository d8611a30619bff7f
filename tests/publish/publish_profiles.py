"""Profiles with a `publish:` section, written into a copy of the policy library."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml


def policies_with(policies_dir: Path, tmp: Path, name: str, publish: dict[str, object]) -> Path:
    """A copy of `policies_dir` with profile `name` = restricted plus `publish` (restricted:
    these small synthetic cohorts are not releasable under open access's EMA 0.09)."""
    copy = tmp / "policies"
    if not copy.exists():
        shutil.copytree(policies_dir, copy)
    base = yaml.safe_load((copy / "profiles" / "restricted.yaml").read_text(encoding="utf-8"))
    (copy / "profiles" / f"{name}.yaml").write_text(
        yaml.safe_dump({**base, "publish": publish}), encoding="utf-8"
    )
    return copy
