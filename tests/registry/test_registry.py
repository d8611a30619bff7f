"""The steward registry on its own, on SQLite and on a real PostgreSQL server: migrations,
sealed keys, release records, the target lock, and records that survive a SIGKILL whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from slidegate.errors import PolicyError, SpecError
from slidegate.registry import Registry
from slidegate.registry.engine import current_revision
from slidegate.registry.keys import release_key
from slidegate.registry.locks import TargetBusy, TargetLock

REPO = Path(__file__).resolve().parents[2]


def test_migrated_to_head_and_key_sealed(registry_url: str, tmp_path: Path) -> None:
    reg = Registry(registry_url, SecretStr("ab" * 32))
    assert current_revision(reg.engine) == "0001"
    a = release_key(reg, "r-1", tmp_path / "A" / "key")
    b = release_key(reg, "r-1", tmp_path / "B" / "key")  # another work area: the same key
    assert a.key_id == b.key_id and (tmp_path / "B" / "key").stat().st_mode & 0o777 == 0o600
    assert release_key(reg, "r-2", tmp_path / "C" / "key").key_id != a.key_id
    with reg.engine.begin() as conn:
        sealed = conn.execute(text("SELECT ciphertext FROM keys WHERE name = 'release:r-1'"))
        blob = bytes(sealed.scalar_one())
    assert a.key not in blob and a.key.hex().encode() not in blob
    wrong = Registry(registry_url, SecretStr("cd" * 32))
    with pytest.raises(PolicyError, match="does not decrypt"):
        wrong.get_secret("release:r-1")
    (tmp_path / "D").mkdir()
    (tmp_path / "D" / "key").write_text("ef" * 32 + "\n")  # a work area holding another key
    with pytest.raises(PolicyError, match="not the registry's key of release 'r-1'"):
        release_key(reg, "r-1", tmp_path / "D" / "key")


def test_release_records(registry_url: str) -> None:
    reg = Registry(registry_url, SecretStr("ab" * 32))
    reg.start_release("rel-1", "/t", "spec-a", "pol", "k1")
    reg.start_release("rel-1", "/t", "spec-b", "pol", "k1")  # not published yet: rerun allowed
    reg.record_published("rel-1", "k1", [], "publishing")
    reg.set_status("rel-1", "complete", decisions={"s-1": "approved"}, manifest_sha256="0" * 64)
    with pytest.raises(SpecError, match="already published"):
        reg.start_release("rel-1", "/t", "spec-c", "pol", "k1")
    rec = reg.start_release("rel-1", "/t", "spec-b", "pol", "k1")  # the same spec: fine
    assert rec["status"] == "complete"
    assert reg.known_releases("/t") == {"rel-1"}
    assert reg.import_releases("/t", {"rel-1": "k1", "old-1": "k0"}) == ["old-1"]
    assert reg.known_releases("/t") == {"rel-1", "old-1"} and reg.known_releases("/u") == set()
    reg.record_approval("rel-1", "approved", "steward alice")
    assert [a["approver"] for a in reg.approvals("rel-1")] == ["steward alice"]


def test_target_lock_serialises_and_is_taken_over_from_a_dead_holder(registry_url: str) -> None:
    reg = Registry(registry_url, SecretStr("ab" * 32))
    first = TargetLock(reg, "s3://b/t", "rel-a").acquire()
    started = time.monotonic()
    with pytest.raises(TargetBusy, match="being released into by release 'rel-a'"):
        TargetLock(reg, "s3://b/t", "rel-b").acquire(wait_s=1.5)
    assert time.monotonic() - started >= 1.4  # it waited, then stopped with the message
    TargetLock(reg, "s3://b/other", "rel-c").acquire().release_lock()  # other targets: free
    first.release_lock()
    TargetLock(reg, "s3://b/t", "rel-b").acquire().release_lock()
    # a holder killed with SIGKILL: its row stays, the next run takes it over
    child = _python(f"""
        from slidegate.registry import Registry
        from slidegate.registry.locks import TargetLock
        TargetLock(Registry({registry_url!r}), "s3://b/t", "rel-k").acquire()
        print("held", flush=True)
        import time; time.sleep(60)
    """)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    with pytest.raises(TargetBusy, match="rel-k"):
        TargetLock(reg, "s3://b/t", "rel-d").acquire()
    child.send_signal(signal.SIGKILL)
    child.wait()
    TargetLock(reg, "s3://b/t", "rel-d").acquire().release_lock()


def _python(code: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def test_sigkill_mid_write_leaves_whole_records(registry_url: str) -> None:
    """A process writing release records and ledger rows as fast as it can is killed: every
    release in the ledger has all its rows and its status, none is half there."""
    Registry(registry_url, SecretStr("ab" * 32))  # migrated before the writer starts
    child = _python(f"""
        from pydantic import SecretStr
        from slidegate.registry import Registry
        reg = Registry({registry_url!r}, SecretStr("ab" * 32))
        print("ready", flush=True)
        i = 0
        while True:
            rel = f"k-{{i}}"
            reg.start_release(rel, "/t", "s", "p", "k")
            rows = [dict(slide=f"s-{{j:016x}}", tile_sha256="t", phash="0" * 16,
                         patient_fp="p") for j in range(50)]
            reg.record_published(rel, "k", rows, "publishing")
            i += 1
    """)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    time.sleep(2.0)
    child.send_signal(signal.SIGKILL)
    child.wait()
    reg = Registry(registry_url, SecretStr("ab" * 32))
    with reg.engine.begin() as conn:
        if reg.engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
        rows = conn.execute(text("SELECT release, COUNT(*) FROM ledger_slides GROUP BY release"))
        counts = {r[0]: r[1] for r in rows}
        statuses = {r[0]: r[1] for r in conn.execute(text("SELECT release, status FROM releases"))}
    print(f"\n{len(counts)} releases written before the SIGKILL")
    assert len(counts) >= 3
    assert set(counts.values()) == {50}  # each release's rows all there, or none
    assert all(statuses[r] == "publishing" for r in counts)
    assert all(s in ("running", "publishing") for s in statuses.values())
