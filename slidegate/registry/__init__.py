"""The steward registry: ledger, pseudonym keys, release records, slide state (resume)."""

from slidegate.registry.store import Registry

__all__ = ["Registry"]
