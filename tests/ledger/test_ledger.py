"""The cross-release ledger on its own: fingerprints, flags, policies, privacy of the store."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from slidegate.ledger import Ledger, LedgerEntry, install_study_key
from slidegate.pseudonym import load_or_create_key
from slidegate.registry import Registry
from slidegate.registry.keys import study_key
from slidegate.risk.images import hamming, perceptual_hash
from slidegate.risk.policy import LedgerPolicy
from slidegate.settings import Settings
from slidegate.synth.texture import downsample, tissue_image


def thumb(seed: int, shape: int) -> np.ndarray:
    return downsample(tissue_image(seed, (512, 768), shape_seed=shape, scale=0.5), 4)


def jpeg(rgb: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=80)
    return np.asarray(Image.open(buf))


def test_perceptual_hash_tells_a_re_encoded_copy_from_a_serial_section() -> None:
    a = thumb(1, 50)
    same = hamming(perceptual_hash(a), perceptual_hash(jpeg(a)))
    serial = hamming(perceptual_hash(a), perceptual_hash(thumb(2, 50)))
    other = hamming(perceptual_hash(a), perceptual_hash(thumb(3, 70)))
    print(f"\nphash distance: re-encoded {same}, serial section {serial}, other tissue {other}")
    limit = LedgerPolicy().phash_max_distance
    assert same <= limit < serial and serial < other + 10


def entry(ledger: Ledger, slide: str, patient: str, img: np.ndarray, tile: str) -> LedgerEntry:
    return LedgerEntry(slide, tile, perceptual_hash(img), ledger.patient_fingerprint(patient))


def settings(tmp_path: Path) -> Settings:
    return Settings(
        work_dir=tmp_path / "work", registry_url=f"sqlite:///{tmp_path}/reg/registry.sqlite"
    )


def test_rerelease_and_patient_flags(tmp_path: Path) -> None:
    ledger = Ledger.open(settings(tmp_path))
    a, b = thumb(1, 50), thumb(2, 60)
    ledger.record([entry(ledger, "s-1111111111111111", "PAT-1", a, "t1")], "r1", "key1")
    policy = LedgerPolicy(on_rerelease="block", on_patient_other_key="warn")
    pending = [
        entry(ledger, "s-2222222222222222", "PAT-1", jpeg(a), "t1-reencoded"),  # same slide
        entry(ledger, "s-3333333333333333", "PAT-1", b, "t3"),  # same patient, other slide
        entry(ledger, "s-4444444444444444", "PAT-2", thumb(5, 80), "t4"),  # new
    ]
    flags = {f.slide: f for f in ledger.check(pending, "r2", "key2", policy)}
    assert flags["s-2222222222222222"].kind == "rerelease"
    assert flags["s-2222222222222222"].severity == "block"
    assert "release r1 as s-1111111111111111 (key key1)" in flags["s-2222222222222222"].reason
    assert flags["s-3333333333333333"].kind == "patient_other_key"
    assert flags["s-3333333333333333"].severity == "warn"
    assert "s-4444444444444444" not in flags
    # the same key (a study key) and the same pseudonym: not flagged
    same = [entry(ledger, "s-1111111111111111", "PAT-1", a, "t1")]
    assert ledger.check(same, "r3", "key1", policy) == []
    # records of the release itself (a resumed run) are ignored
    assert ledger.check(pending, "r1", "key1", policy) == []
    # raw patient ids are never stored, and the ledger key is sealed
    stored = b"".join(p.read_bytes() for p in (tmp_path / "reg").iterdir() if p.is_file())
    assert (
        b"PAT-1" not in stored
        and ledger._key not in stored
        and ledger._key.hex() not in str(stored)
    )
    assert Ledger.open(settings(tmp_path)).releases() == ["r1"]  # another process: the same


def test_study_key_store(tmp_path: Path) -> None:
    s = settings(tmp_path)
    release_key = tmp_path / "releases" / "r1" / "private" / "key"
    kid = install_study_key(s, "crc", release_key, "r1")
    assert load_or_create_key(release_key).key_id == kid
    assert study_key(Registry.open(s), "crc").key_id == kid
    assert release_key.stat().st_mode & 0o777 == 0o600
    other = tmp_path / "releases" / "r2" / "private" / "key"
    load_or_create_key(other)  # a release that already has its own key
    import pytest

    from slidegate.errors import PolicyError

    with pytest.raises(PolicyError, match="not the key of study"):
        install_study_key(s, "crc", other, "r2")
