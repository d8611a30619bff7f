"""The egress gate: the only code that writes to a Store (tests/architecture/test_egress.py).

Every write names its key; the key is searched for every needle first. Then the bytes:
- an object whose sha256 was *admitted* (a slide output after its audit, see
  slidegate/stages/gate.py) is written without a second scan;
- `admitted_only=True` (slide objects) refuses anything else: bytes the audit did not see
  never leave;
- any other object (cohort.csv, reports, Data Docs, SHA256SUMS, manifest.json) is searched in
  full, text documents inside their base64 strings too (slidegate/egress/matcher.py).

A finding raises `EgressBlocked` before the store is touched: the message names the object
(matching parts of the key as [REDACTED]) and the rule ids, never the value.

Masked before a key or a document is searched (replaced by NUL bytes of the same length): the
sha256 digests of objects that passed the gate, the release's own pseudonyms and its release id
(the steward's choice: "cmu-1" for a release of the slide CMU-1). Both are
computed by slidegate, not source text, and as random hex they would match short needles
("a.svs" in "s-...7da.svs", a numeric id inside a digest) by chance.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from slidegate.egress.matcher import Matcher, is_document
from slidegate.errors import EgressBlocked
from slidegate.publish.s3 import S3Store, copy_object
from slidegate.publish.stores import Store, check_key, sha256_file

NOT_ADMITTED = "egress.not-admitted"
_DIGEST = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_PSEUDONYM = re.compile(rb"(?<![0-9a-z])[spbx]-[0-9a-f]{16}(?![0-9a-f])")


def masked(
    data: bytes,
    pseudonyms: frozenset[str],
    digests: frozenset[str] = frozenset(),
    own: frozenset[str] = frozenset(),
) -> bytes:
    """`data` with each known pseudonym and digest, and each `own` text (the release id, which
    the steward chose), replaced by NUL bytes (same length)."""
    for text in own:
        raw = text.encode("utf-8")
        data = data.replace(raw, b"\0" * len(raw))

    def sub(known: frozenset[str]) -> Callable[[re.Match[bytes]], bytes]:
        return lambda m: b"\0" * len(m.group()) if m.group().decode() in known else m.group()

    if pseudonyms:
        data = _PSEUDONYM.sub(sub(pseudonyms), data)
    if digests:
        data = _DIGEST.sub(sub(digests), data)
    return data


class Gate:
    """A target Store behind the needle search. Thread-safe (uploads run in a pool)."""

    def __init__(
        self,
        store: Store,
        matcher: Matcher,
        admitted: Iterable[str] = (),
        pseudonyms: Iterable[str] = (),
        own: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.matcher = matcher
        self._admitted = frozenset(admitted)
        self._pseudonyms = frozenset(pseudonyms)
        self._own = frozenset(o for o in own if o)
        self._passed: set[str] = set()  # digests of objects that passed a scan here
        self._lock = threading.Lock()

    def admitted(self, sha256: str) -> bool:
        return sha256 in self._admitted

    def check_key(self, key: str) -> str:
        check_key(key)
        hits = self.matcher.find(masked(key.encode("utf-8"), self._pseudonyms, own=self._own))
        if hits:
            raise EgressBlocked(self.matcher.redact(key), hits)
        return key

    def _mask(self, data: bytes) -> bytes:
        with self._lock:
            known = self._admitted | self._passed
        return masked(data, self._pseudonyms, known, self._own)

    def _pass(self, sha256: str) -> None:
        with self._lock:
            self._passed.add(sha256)

    def check_bytes(self, key: str, data: bytes) -> str:
        """Key and every byte of `data` (as the object `key`); returns its sha256."""
        self.check_key(key)
        hits = self.matcher.scan_bytes(key, self._mask(data) if is_document(key) else data)
        if hits:
            raise EgressBlocked(self.matcher.redact(key), hits)
        sha = hashlib.sha256(data).hexdigest()
        self._pass(sha)
        return sha

    def check_file(self, key: str, path: Path, sha256: str | None = None) -> str:
        """Key and every byte of the file at `path`, unless its sha256 was admitted or passed."""
        self.check_key(key)
        sha = sha256 or sha256_file(path)
        with self._lock:
            known = sha in self._admitted or sha in self._passed
        if known:
            return sha
        if is_document(key):
            hits = self.matcher.scan_document(self._mask(Path(path).read_bytes()))
        else:
            hits = self.matcher.scan_file(path, name="")
        if hits:
            raise EgressBlocked(self.matcher.redact(key), hits)
        self._pass(sha)
        return sha

    def write_file(self, key: str, path: Path, sha256: str, *, admitted_only: bool = False) -> None:
        if admitted_only:
            self.check_key(key)
            if sha256 not in self._admitted:
                raise EgressBlocked(self.matcher.redact(key), {NOT_ADMITTED})
        else:
            self.check_file(key, path, sha256)
        self.store.put_file(key, path, sha256)

    def write_bytes(self, key: str, data: bytes, *, lock: bool = True) -> str:
        sha = self.check_bytes(key, data)
        self.store.put_bytes(key, data, sha, lock=lock)
        return sha

    def copy_staged(self, source: S3Store, src_key: str, key: str) -> tuple[str, int, bool]:
        """Copy an admitted staged object (staging -> target); refused unless admitted."""
        self.check_key(key)
        sha = source.head_sha256(src_key) or source.hash_object(src_key) or ""
        if sha not in self._admitted:
            raise EgressBlocked(self.matcher.redact(key), {NOT_ADMITTED})
        got, size, copied = copy_object(source, src_key, self.store, key)
        if got != sha:  # changed between the head and the copy
            if copied:
                self.store.delete(key)
            raise EgressBlocked(self.matcher.redact(key), {NOT_ADMITTED})
        return got, size, copied


def open_gate(
    store: Store,
    needles: Iterable[tuple[str, str]] = (),
    admitted: Iterable[str] = (),
    pseudonyms: Iterable[str] = (),
) -> Gate:
    """A gate over `store` searching for `needles` ((rule id, value) pairs)."""
    return Gate(store, Matcher(needles), admitted, pseudonyms)
