"""The steward registry: ledger, pseudonym keys, release records, slide state (resume).

`Registry` is imported on first use: `slidegate.registry.hashes` and friends do not pull
SQLAlchemy and cryptography into a process that does not open the registry (a Dask worker's
first slide paid ~1.4 s for them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slidegate.registry.store import Registry

__all__ = ["Registry"]


def __getattr__(name: str) -> Any:
    if name == "Registry":
        from slidegate.registry.store import Registry

        return Registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
