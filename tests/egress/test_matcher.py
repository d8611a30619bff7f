"""The egress matcher: every encoding, any case, across block borders, inside base64."""

from __future__ import annotations

import base64
import io
import json
import pickle

import pytest

from slidegate.egress.matcher import Matcher, base64_layers, cached, variants

SECRET = "Jane Roe 1970-01-01"


def m(*values: str) -> Matcher:
    return Matcher([(f"rule-{i}", v) for i, v in enumerate(values)])


@pytest.mark.parametrize(
    "encoded",
    [
        SECRET.encode("utf-8"),
        SECRET.upper().encode("utf-8"),
        SECRET.lower().encode("utf-16-le"),
        SECRET.encode("utf-16-be"),
        SECRET.encode("utf-8").hex().encode(),
        SECRET.encode("utf-8").hex().upper().encode(),
    ],
    ids=["utf8", "upper", "utf16le-lower", "utf16be", "hex", "HEX"],
)
def test_each_encoding_is_found_inside_binary_noise(encoded: bytes) -> None:
    data = bytes(range(256)) * 3 + encoded + b"\xff\xd9" * 10
    assert m(SECRET).find(data) == {"rule-0"}
    assert m(SECRET).find(data.replace(encoded, encoded[:-1])) == set()


def test_json_escaped_non_ascii_is_found() -> None:
    value = "Ärztin Müller"
    doc = json.dumps({"note": f"by {value}"}).encode()  # \u00c4rztin M\u00fcller
    assert b"\\u00c4" in doc
    assert m(value).find(doc) == {"rule-0"}
    raw = json.dumps({"note": value}, ensure_ascii=False).encode()
    assert m(value).find(raw) == {"rule-0"}


def test_short_needles_are_skipped_and_counted() -> None:
    matcher = Matcher([("a", "abc"), ("b", "  x "), ("c", "abcd")])
    assert matcher.skipped == 2
    assert matcher.find(b"xx abc abcd") == {"c"}


def test_duplicate_needles_are_one_pattern_with_every_label() -> None:
    matcher = Matcher([("a", "Secret1"), ("b", "secret1"), ("c", "SECRET1")])
    assert len(matcher) == len(variants("Secret1")) == 6  # utf-8, 2 x utf-16, 3 x hex
    assert matcher.find(b"..SeCrEt1..") == {"a", "b", "c"}


def test_overlapping_and_nested_needles_are_all_reported() -> None:
    matcher = Matcher([("outer", "Jane Roe"), ("inner", "Roe 1970"), ("dob", "1970-01-01")])
    assert matcher.find(SECRET.encode()) == {"outer", "inner", "dob"}


def test_a_needle_across_a_block_border_is_found() -> None:
    matcher = m(SECRET)
    data = b"x" * 1000 + SECRET.encode() + b"y" * 1000
    for block in (7, 64, 1003, 1010, 4096):
        assert matcher.scan_stream(io.BytesIO(data), block_size=block) == {"rule-0"}, block


def test_base64_in_a_json_document_is_decoded_nested() -> None:
    inner = base64.b64encode(b"\xff\xd8 tables " + SECRET.encode() + b" \xff\xd9").decode()
    outer = base64.urlsafe_b64encode(json.dumps({"t": inner}).encode()).decode()
    doc = json.dumps({"codecs": [{"configuration": {"tables": outer}}]}).encode()
    matcher = m(SECRET)
    assert matcher.find(doc) == set()  # not visible as plain bytes
    assert matcher.scan_document(doc) == {"rule-0"}
    assert matcher.scan_bytes("a/zarr.json", doc) == {"rule-0"}
    assert matcher.scan_bytes("a/c/0/0", doc) == set()  # a chunk is not a document


def test_base64_at_any_offset_and_in_a_longer_string() -> None:
    for pad in range(4):
        payload = b"p" * pad + SECRET.encode() + b"q" * (pad % 2)  # the secret may end the run
        doc = json.dumps({"s": "data:x;base64," + base64.b64encode(payload).decode()}).encode()
        assert m(SECRET).scan_document(doc) == {"rule-0"}, pad


def test_base64_nesting_is_bounded() -> None:
    data = SECRET.encode()
    for _ in range(6):
        data = base64.b64encode(data)
    assert not any(SECRET.encode() in layer for layer in base64_layers(data))


def test_redact_replaces_every_match() -> None:
    matcher = m("Jane Roe", "1970-01-01")
    assert matcher.redact("cases/Jane Roe/1970-01-01.svs") == "cases/[REDACTED]/[REDACTED].svs"
    assert matcher.redact("slides/s-abc.ome.zarr/zarr.json") == "slides/s-abc.ome.zarr/zarr.json"


def test_empty_matcher_finds_nothing() -> None:
    matcher = Matcher([])
    assert matcher.find(b"anything") == set()
    assert matcher.scan_document(b'{"a": "b"}') == set()


def test_bulk_binary_is_searched_in_the_value_lower_and_upper_case_only() -> None:
    """`scan_stream` (image chunks, copies): the value as it is, lower or upper case, in every
    encoding; a random case mix is what a 4-letter needle would match by chance in a large
    compressed image, so it is not searched there. Keys and documents (`find`): any case."""
    matcher = m(SECRET)
    noise = bytes(range(256)) * 4
    for form in (SECRET, SECRET.lower(), SECRET.upper()):
        for data in (form.encode(), form.encode("utf-16-be"), form.encode().hex().upper().encode()):
            assert matcher.scan_stream(io.BytesIO(noise + data + noise)) == {"rule-0"}, data
    mixed = b"jAnE rOe 1970-01-01"
    assert matcher.scan_stream(io.BytesIO(noise + mixed)) == set()
    assert matcher.find(noise + mixed) == {"rule-0"}


def test_cached_matchers_are_compiled_once_and_survive_pickling() -> None:
    needles = (("egress.canary", "SGCANARY00000042Q12345"), ("egress.cohort-id", "PAT-000042"))
    first = cached(needles)
    assert cached(needles) is first and cached(needles[:1]) is not first
    again = pickle.loads(pickle.dumps(first))  # a Dask worker receives it: compiled again there
    assert again.find(b"..pat-000042..") == {"egress.cohort-id"}
    assert again.scan_stream(io.BytesIO(b"\x00SGCANARY00000042Q12345\xff")) == {"egress.canary"}
