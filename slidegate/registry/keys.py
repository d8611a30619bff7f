"""Pseudonym keys kept by the registry (sealed), and the release's working copy.

A release's key is the registry's `release:<id>` (or the study's `study:<name>`, for stable
pseudonyms); the run's work area gets a 0600 copy that its own stages read. A work area that
already holds a key for a release the registry does not know (a release started before the
registry, a collection export) hands that key to the registry."""

from __future__ import annotations

import os
from pathlib import Path

from slidegate.errors import PolicyError
from slidegate.pseudonym import Pseudonymizer, load_or_create_key
from slidegate.registry.store import Registry


def _write_copy(path: Path, key: Pseudonymizer) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.key.hex() + "\n")
    os.replace(tmp, path)


def study_key(registry: Registry, study: str) -> Pseudonymizer:
    """The study's key, created on first use."""
    return Pseudonymizer(registry.secret(f"study:{study}"))


def release_key(
    registry: Registry, release: str, work_copy: Path, study: str | None = None
) -> Pseudonymizer:
    """The key of `release`, the same from any work area; the copy at `work_copy` is written
    (or checked: a copy made with another key is refused, its pseudonyms would change)."""
    name = f"release:{release}"
    stored = registry.get_secret(name)
    local = load_or_create_key(work_copy) if work_copy.exists() else None
    if stored is None:
        if study is not None:
            wanted = study_key(registry, study)
        elif local is not None:
            wanted = local
        else:
            wanted = Pseudonymizer(os.urandom(32))
        if local is not None and local.key_id != wanted.key_id:
            raise PolicyError(
                f"release key {work_copy} is not the key of study {study!r}; the release was "
                "started with another key: use a new release id"
            )
        stored = registry.put_secret(name, wanted.key, wanted.key_id)
    key = Pseudonymizer(stored)
    if study is not None and study_key(registry, study).key_id != key.key_id:
        raise PolicyError(
            f"release {release!r} was started with another key than that of study {study!r}; "
            "its pseudonyms would change: use a new release id"
        )
    if local is not None and local.key_id != key.key_id:
        raise PolicyError(
            f"release key {work_copy} is not the registry's key of release {release!r} "
            f"(key {key.key_id}); the work area holds another key: delete that copy or use a "
            "new release id"
        )
    if local is None:
        _write_copy(work_copy, key)
    return key
