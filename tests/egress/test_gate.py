"""The egress gate on a real folder store: keys, bytes, admission, fail-closed, no value shown."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from slidegate.egress.gate import NOT_ADMITTED, open_gate
from slidegate.errors import EgressBlocked, PolicyViolation
from slidegate.publish import LocalStore, publish_files, verify_release, write_manifest

SECRET = "Jane Roe 1970-01-01"
NEEDLES = [("egress.field-value", SECRET), ("egress.canary", "CANARY-0042")]
PSEUDONYM = "s-0123456789abcdef"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "target")


def written(store: LocalStore) -> list[str]:
    return store.list_keys("")


@pytest.mark.parametrize(
    "data",
    [
        SECRET.encode("utf-16-le"),
        SECRET.upper().encode("utf-16-be"),
        SECRET.encode().hex().upper().encode(),
        json.dumps({"note": base64.b64encode(SECRET.encode()).decode()}).encode(),
    ],
    ids=["utf16le", "utf16be-upper", "HEX", "base64-in-json"],
)
def test_a_report_holding_a_needle_is_not_written(
    store: LocalStore, tmp_path: Path, data: bytes
) -> None:
    gate = open_gate(store, NEEDLES)
    report = tmp_path / "risk.json"
    report.write_bytes(b'{"a": 1, "b": "' + data + b'"}')
    with pytest.raises(EgressBlocked) as err:
        gate.write_file("r1/reports/risk.json", report, sha(report.read_bytes()))
    assert isinstance(err.value, PolicyViolation)
    assert err.value.rules == ("egress.field-value",)
    assert "r1/reports/risk.json" in str(err.value) and "egress.field-value" in str(err.value)
    assert SECRET.lower() not in str(err.value).lower() and "jane" not in err.value.reason.lower()
    assert written(store) == []


def test_a_key_holding_a_needle_is_refused_and_redacted(store: LocalStore, tmp_path: Path) -> None:
    gate = open_gate(store, NEEDLES)
    f = tmp_path / "x.txt"
    f.write_text("clean\n")
    with pytest.raises(EgressBlocked) as err:
        gate.write_file("r1/reports/canary-0042.txt", f, sha(b"clean\n"))
    assert "r1/reports/[REDACTED].txt" in str(err.value) and "0042" not in str(err.value)
    with pytest.raises(EgressBlocked):
        gate.write_bytes("r1/Jane Roe 1970-01-01/x", b"clean")
    assert written(store) == []


def test_slide_objects_pass_only_when_admitted(store: LocalStore, tmp_path: Path) -> None:
    chunk = tmp_path / "c0"
    chunk.write_bytes(b"\xff\xd8 audited bytes \xff\xd9")
    other = tmp_path / "c1"
    other.write_bytes(b"never audited")
    gate = open_gate(store, NEEDLES, admitted=[sha(chunk.read_bytes())], pseudonyms=[PSEUDONYM])
    key = f"r1/slides/{PSEUDONYM}.ome.zarr/0/c/0/0"
    gate.write_file(key, chunk, sha(chunk.read_bytes()), admitted_only=True)
    with pytest.raises(EgressBlocked) as err:
        gate.write_file(key + "x", other, sha(other.read_bytes()), admitted_only=True)
    assert err.value.rules == (NOT_ADMITTED,)
    # the hash the caller claims is the one checked against the admitted set
    with pytest.raises(EgressBlocked):
        gate.write_file(key + "y", other, sha(chunk.read_bytes()) + "0", admitted_only=True)
    assert written(store) == [key]


def test_own_pseudonyms_and_digests_do_not_match_short_needles(
    store: LocalStore, tmp_path: Path
) -> None:
    # "f.svs" (a source file name) and "456789" (a patient id) occur by chance in hex
    gate = open_gate(
        store,
        [("egress.source-name", "f.svs"), ("egress.cohort-id", "456789")],
        pseudonyms=["s-0123456789abcdef"],
    )
    copy = tmp_path / "copy.svs"
    copy.write_bytes(b"II*\0 tiles")
    gate.write_file("r1/slides/s-0123456789abcdef.svs", copy, sha(copy.read_bytes()))
    records = publish_files(
        gate, "r1", {"cohort.csv": _csv(tmp_path, "slide\ns-0123456789abcdef\n")}
    )
    write_manifest(gate, "r1", records, {"slides": 1})
    assert verify_release(store, "r1") == []
    # an unknown pseudonym-shaped value is not masked: a needle inside it is found
    with pytest.raises(EgressBlocked):
        gate.write_bytes("r1/reports/x.json", b'{"v": "s-9999456789ffffff"}')


def test_the_manifest_is_searched_before_it_is_written(store: LocalStore, tmp_path: Path) -> None:
    gate = open_gate(store, NEEDLES)
    records = publish_files(gate, "r1", {"cohort.csv": _csv(tmp_path, "slide\nx\n")})
    with pytest.raises(EgressBlocked):
        write_manifest(gate, "r1", records, {"note": "canary-0042"})
    assert "r1/manifest.json" not in written(store)


def test_a_release_key_is_searched_again_when_the_manifest_lists_it(
    store: LocalStore, tmp_path: Path
) -> None:
    clean = open_gate(store)
    f = tmp_path / "x"
    f.write_bytes(b"x")
    records = publish_files(clean, "r1", {"slides/CANARY-0042/x": f})  # a gate without needles
    with pytest.raises(EgressBlocked):
        write_manifest(open_gate(store, NEEDLES), "r1", records, {})
    assert "r1/manifest.json" not in written(store)


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cohort.csv"
    p.write_text(text)
    return p
