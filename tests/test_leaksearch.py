"""The test-side leak search finds a secret in every encoding it claims, and nothing else."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.leaksearch import find_leaks, find_leaks_in_bytes

SECRET = "Jane Roe 1970-01-01"


@pytest.mark.parametrize(
    ("data", "how"),
    [
        (SECRET.encode(), "utf-8"),
        (SECRET.upper().encode(), "utf-8"),
        (SECRET.encode("utf-16-le"), "utf-16-le"),
        (SECRET.swapcase().encode("utf-16-be"), "utf-16-be"),
        (SECRET.encode().hex().upper().encode(), "hex"),
        (b"\x00\xff" + SECRET.encode().hex().encode() + b"\x00", "hex"),
    ],
)
def test_every_plain_encoding_is_found(data: bytes, how: str) -> None:
    assert ("s", how) in find_leaks_in_bytes(b"xx" + data + b"yy", {"s": SECRET})


def test_base64_inside_json_is_found_at_any_alignment() -> None:
    for pad in range(3):
        blob = b"\xff\xd8" + b"A" * pad + SECRET.encode() + b"\xff\xd9"
        doc = json.dumps({"codec": {"tables": base64.b64encode(blob).decode()}}).encode()
        assert any(h.startswith("base64:") for _, h in find_leaks_in_bytes(doc, {"s": SECRET}))


def test_keys_and_clean_trees(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "clean.json").write_text(json.dumps({"k": "nothing here"}))
    assert find_leaks(tmp_path, {"s": SECRET}) == []
    (tmp_path / "a" / f"{SECRET}.txt").write_text("x")
    assert [(lbl, how) for lbl, _, how in find_leaks(tmp_path, {"s": SECRET})] == [
        ("s", "key:utf-8")
    ]


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        find_leaks_in_bytes(b"abc", {"s": "abc"})
