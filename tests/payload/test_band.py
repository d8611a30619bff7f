"""The vectorised band cleaner gives the same answer as walking each tile, and is not fooled by
a tile that shares a known header but hides text after its scan."""

from __future__ import annotations

import numpy as np
import pytest

from slidegate.payload import BandCleaner, Unparsable, clean_j2k, clean_jpeg, clean_payloads
from tests.payload import crafts

SECRET = b"CANARY-BAND-5b2c"


def _buffer(tiles: list[bytes | None]) -> tuple[bytes, np.ndarray, np.ndarray]:
    gap = b"\xff\xd9GAP"  # bytes between tiles that are no tile's: never judged
    parts, starts, counts, at = [], [], [], 0
    for t in tiles:
        parts.append(gap)
        at += len(gap)
        starts.append(at if t else 0)
        counts.append(len(t) if t else 0)
        if t:
            parts.append(t)
            at += len(t)
    return b"".join(parts), np.array(starts), np.array(counts)


def test_band_matches_tile_by_tile_walk() -> None:
    clean = [crafts.jpeg(crafts.image(seed=s)) for s in range(30)]
    places = crafts.jpeg_hiding_places(clean[0], SECRET)
    dirty = [crafts.jpeg_hiding_places(t, SECRET)[p] for t, p in zip(clean, sorted(places) * 3,
                                                                        strict=False)]  # fmt: skip
    tiles: list[bytes | None] = [*clean, None, *dirty, crafts.progressive(crafts.image())]
    buf, starts, counts = _buffer(tiles)
    cleaner = BandCleaner("jpeg")
    out = cleaner.clean(memoryview(buf), starts, counts)
    assert cleaner.known  # headers learnt: the clean tiles took the vectorised path
    for i, t in enumerate(tiles):
        if t is None:
            assert i not in out
            continue
        assert out.get(i, t) == clean_jpeg(t), i
        assert SECRET[:3] not in out.get(i, t)
    assert set(out) == {i for i, t in enumerate(tiles) if t is not None and clean_jpeg(t) != t}


def test_known_header_does_not_vouch_for_the_rest_of_a_tile() -> None:
    """The old prefix check's gap: same header, text after the scan or after EOI."""
    tiles = [crafts.jpeg(crafts.image(seed=s)) for s in range(4)]
    cleaner = BandCleaner("jpeg")
    buf, starts, counts = _buffer(tiles)
    assert cleaner.clean(buf, starts, counts) == {}
    hidden = [tiles[1] + SECRET, crafts.before_eoi(tiles[2], crafts.segment(0xFE, SECRET)),
              tiles[3][:-2] + b"\xff\xd9\xff\xd9"]  # fmt: skip
    buf, starts, counts = _buffer(hidden)
    out = cleaner.clean(buf, starts, counts)
    assert out == {0: tiles[1], 1: tiles[2], 2: tiles[3]}
    buf, starts, counts = _buffer([tiles[0][:-30]])  # truncated: its scan never ends
    with pytest.raises(Unparsable):
        cleaner.clean(buf, starts, counts)


def test_a_known_dirty_header_is_cleaned_on_the_fast_path() -> None:
    tiles = [crafts.after_soi(crafts.jpeg(crafts.image(seed=s)),
                              crafts.segment(0xE1, b"Exif\x00\x00" + SECRET))
             for s in range(6)]  # fmt: skip
    cleaner = BandCleaner("jpeg")
    payloads = clean_payloads(cleaner, tiles)
    assert len(cleaner.known) == 1 and cleaner.known[0][1] is not None
    assert payloads == [clean_jpeg(t) for t in tiles]


def test_j2k_band() -> None:
    tiles: list[bytes | None] = [crafts.j2k(crafts.image(seed=s)) for s in range(3)]
    tiles.append(None)
    out = clean_payloads(BandCleaner("j2k"), tiles)
    assert out[:3] == [clean_j2k(t) for t in tiles[:3] if t] and out[3] is None


def test_j2k_known_main_header_takes_the_fast_path_but_vouches_for_nothing_else() -> None:
    tiles = [crafts.j2k(crafts.image(seed=s)) for s in range(6)]
    cleaner = BandCleaner("j2k")
    buf, starts, counts = _buffer(list(tiles))
    out = cleaner.clean(buf, starts, counts)
    assert len(cleaner.known) == 1 and cleaner.known[0][1] is not None  # OpenJPEG's COM
    assert out == {i: clean_j2k(t) for i, t in enumerate(tiles)}
    hidden = [tiles[0] + SECRET, crafts.j2k_tile_part_com(tiles[1], SECRET),
              tiles[2][:-2] + b"\xff\x93" + tiles[2][-2:]]  # fmt: skip
    buf, starts, counts = _buffer(hidden)
    with pytest.raises(Unparsable):  # a marker in the bit stream
        cleaner.clean(buf, starts, counts)
    buf, starts, counts = _buffer(hidden[:2])
    out = cleaner.clean(buf, starts, counts)
    assert out == {0: clean_j2k(tiles[0]), 1: clean_j2k(tiles[1])}
    assert all(SECRET not in v for v in out.values())


@pytest.mark.parametrize("kind", ["jpeg", "j2k"])
def test_marker_search_equals_a_byte_by_byte_scan(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slidegate.payload import band

    monkeypatch.setattr(band, "CHUNK", 1000)  # many chunk boundaries, 0xFF bytes across them
    data = np.random.default_rng(9).integers(0, 256, 20_000, dtype=np.uint8)
    data[::37] = 0xFF
    data[999:1001] = (0xFF, 0xD9)
    data[-1] = 0xFF
    want = [
        p for p in range(data.size - 1)
        if data[p] == 0xFF and (
            (data[p + 1] != 0 and not 0xD0 <= data[p + 1] <= 0xD7) if kind == "jpeg"
            else (data[p + 1] >= 0x90 and data[p + 1] not in (0x91, 0x92))
        )
    ]  # fmt: skip
    got = band.markers(data, np.empty(1000, bool), kind)
    assert got.tolist() == want and 999 in want
