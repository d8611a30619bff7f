"""Pass-through levels are proven by their bytes: each output chunk is the source tile it stands
for (read with tifffile), under the source page's decoder configuration, with no metadata
segment; nothing is decoded. Damage to chunks, their index, the codec or the shard folder is
caught; `audit: full` still decodes and compares every level."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import slidegate.audit.reopen as reopen
from bench.inputs import write_slide
from slidegate.audit import verify_output
from slidegate.audit.pixels import (
    BLOCK,
    Rule,
    area_half,
    area_sum,
    lowest_block_psnr,
    max_abs_diff,
    regions,
)
from slidegate.convert import ConvertOptions, write_ome_zarr
from slidegate.deid import load_deid_policy, plan_deid
from slidegate.formats import read_facts
from slidegate.models import DeidPlan
from slidegate.profile import Conversion

EMPTY = 2**64 - 1


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory, policies_dir: Path
) -> tuple[Path, Path, DeidPlan]:
    root = tmp_path_factory.mktemp("bytes")
    svs = write_slide(root / "s.svs", (1100, 1500), tile=256, zero_tiles=(7,))
    facts = read_facts(svs, svs.name)
    plan = plan_deid(facts, load_deid_policy(policies_dir / "deid/svs.yaml"), "s-00000000000000ab")
    out = root / "o.ome.zarr"
    write_ome_zarr(svs, plan, out, ConvertOptions(shard=512))
    return svs, out, plan


@pytest.fixture
def output(written: tuple[Path, Path, DeidPlan], tmp_path: Path) -> Path:
    copy = tmp_path / "o.ome.zarr"
    shutil.copytree(written[1], copy)
    return copy


def _no_decode(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def counted(i: int, *args: Any) -> str | None:
        calls.append(i)
        return None

    monkeypatch.setattr(reopen, "compare_level", counted)
    return calls


def test_passthrough_levels_proven_without_decoding(
    written: tuple[Path, Path, DeidPlan], monkeypatch: pytest.MonkeyPatch
) -> None:
    svs, out, plan = written
    calls = _no_decode(monkeypatch)
    assert len(plan.levels) >= 2
    assert verify_output(out, plan, svs) == []
    assert calls == []  # every level proven by its bytes
    assert verify_output(out, plan, svs, conversion=Conversion(audit="full")) == []
    assert calls == list(range(len(plan.levels)))  # the full audit decodes them all


def test_full_audit_really_compares_pixels(written: tuple[Path, Path, DeidPlan]) -> None:
    svs, out, plan = written
    assert verify_output(out, plan, svs, conversion=Conversion(audit="full")) == []


def _shard(out: Path, level: int = 0) -> tuple[Path, bytearray, np.ndarray]:
    path = out / str(level) / "c" / "0" / "0" / "0"
    data = bytearray(path.read_bytes())
    meta = json.loads((out / str(level) / "zarr.json").read_text())
    n = 1
    shard, chunk = meta["chunk_grid"]["configuration"]["chunk_shape"], None
    for codec in meta["codecs"]:
        if codec["name"] == "sharding_indexed":
            chunk = codec["configuration"]["chunk_shape"]
    assert chunk is not None
    n = (shard[1] // chunk[1]) * (shard[2] // chunk[2])
    index = np.frombuffer(bytes(data[-16 * n - 4 : -4]), "<u8").reshape(n, 2).copy()
    return path, data, index


def _rewrite(path: Path, payloads: list[bytes | None]) -> None:
    import google_crc32c

    index = np.full((len(payloads), 2), EMPTY, "<u8")
    body = b""
    for i, p in enumerate(payloads):
        if p is not None:
            index[i] = (len(body), len(p))
            body += p
    raw = index.tobytes()
    path.write_bytes(body + raw + int(google_crc32c.value(raw)).to_bytes(4, "little"))


def _payloads(data: bytearray, index: np.ndarray) -> list[bytes | None]:
    return [None if o == EMPTY else bytes(data[int(o) : int(o + n)]) for o, n in index]


def _swap(p: list[bytes | None]) -> list[bytes | None]:
    return [p[1], p[0], *p[2:]]


def _comment(p: list[bytes | None]) -> list[bytes | None]:
    first = p[0]
    assert first is not None
    return [first[:2] + b"\xff\xfe\x00\x0cPAT-Smith\x00" + first[2:], *p[1:]]


def _drop(p: list[bytes | None]) -> list[bytes | None]:
    return [None, *p[1:]]


def _fill_missing(p: list[bytes | None]) -> list[bytes | None]:
    return [q if q is not None else p[0] for q in p]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_swap, "2 chunk(s) are not the source tile"),
        (_comment, "level 0:"),  # another digest, or (coding digest) a failed payload check
        (_drop, "1 chunk(s) are not the source tile"),
        (_fill_missing, "1 chunk(s) are not the source tile"),  # tile 7 is zero-length
    ],
)
def test_damaged_chunks_caught(
    written: tuple[Path, Path, DeidPlan],
    output: Path,
    damage: Callable[[list[bytes | None]], list[bytes | None]],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svs, _, plan = written
    path, data, index = _shard(output)
    payloads = _payloads(data, index)
    if damage is _fill_missing:
        assert payloads.count(None) == 1
    _rewrite(path, damage(payloads))
    calls = _no_decode(monkeypatch)
    problems = verify_output(output, plan, svs)
    assert len(problems) == 1 and problems[0].startswith("level 0:"), problems
    assert expected in problems[0], problems
    assert calls == []


def test_damaged_index_codec_and_stray_file_caught(
    written: tuple[Path, Path, DeidPlan], output: Path
) -> None:
    svs, _, plan = written
    path, data, _ = _shard(output)
    data[-1] ^= 0xFF  # the index checksum
    path.write_bytes(bytes(data))
    problems = verify_output(output, plan, svs)
    assert problems == ["level 0: shard index of shard (0, 0) is damaged"], problems
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    (output / "1" / "c" / "0" / "0" / "extra").write_bytes(b"x")
    assert verify_output(output, plan, svs) == ["level 1: 1 unexpected file(s) among the shards"]
    (output / "1" / "c" / "0" / "0" / "extra").unlink()
    meta_path = output / "0" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    inner = meta["codecs"][0]["configuration"]["codecs"]
    jpeg = next(c for c in inner if c["name"] == "jpeg")
    if jpeg.pop("configuration", None) is None:  # the other colour space than the source's
        jpeg["configuration"] = {"encoded_color_space": "rgb"}
    meta_path.write_text(json.dumps(meta))
    problems = verify_output(output, plan, svs)
    assert problems == ["level 0: codec configuration is not the source page's (tables, colour)"]


def _psnr_float64(got: np.ndarray, want: np.ndarray) -> float:
    diff = got.astype(np.float64) - want.astype(np.float64)
    low = math.inf
    for ys, xs in regions(diff.shape[1], diff.shape[2], BLOCK):
        mse = float(np.mean(diff[:, ys, xs] ** 2))
        if mse > 0:
            low = min(low, 10 * math.log10(255.0**2 / mse))
    return low


def test_block_psnr_in_int16_equals_the_float64_definition() -> None:
    rng = np.random.default_rng(3)
    want = rng.integers(0, 256, (3, 700, 600), dtype=np.uint8)
    got = np.clip(want.astype(int) + rng.integers(-9, 10, want.shape), 0, 255).astype(np.uint8)
    got[:, 300:400, 520:600] = 0  # one bad block (at the ragged edge)
    assert lowest_block_psnr(got, want) == pytest.approx(_psnr_float64(got, want), abs=1e-6)
    ref = want.astype(np.float32) + np.float32(0.25)  # float references of derived levels
    assert lowest_block_psnr(got, ref) == pytest.approx(_psnr_float64(got, ref), abs=1e-4)
    assert lowest_block_psnr(want, want) == math.inf


def test_integer_block_sums_judge_like_the_float_average() -> None:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (3, 517, 300), dtype=np.uint8)  # odd edge: replicated
    sums, mean = base, base.astype(np.float64)
    for k in (1, 2, 3, 4, 5):
        sums, mean = area_sum(sums, 255 * 4 ** (k - 1)), area_half(mean)
        assert np.array_equal(sums / 4**k, mean), k
        got = np.clip(np.rint(mean) + rng.integers(-4, 5, mean.shape), 0, 255).astype(np.uint8)
        assert lowest_block_psnr(got, sums, scale=4**k) == pytest.approx(
            _psnr_float64(got, mean), abs=1e-6
        )
        worst = float(np.abs(got - mean).max())
        assert max_abs_diff(got, sums, 4**k) == pytest.approx(worst)
        assert Rule(tolerance=worst).check(got, sums, 4**k) is None
        assert Rule(tolerance=worst - 0.01).check(got, sums, 4**k) is not None


def test_dicom_passthrough_chunks_are_walked_by_the_audit(
    real_slides: Path, policies_dir: Path, tmp_path: Path
) -> None:
    """A DICOM level's pixels are compared, but a pixel comparison is blind to a segment the
    decoder skips: every chunk of a pass-through level is walked by the payload check too."""
    source = real_slides / "dicom-wsi" / "cmu-1-small-region-wsi2dcm"
    facts = read_facts(source, source.name)
    plan = plan_deid(
        facts, load_deid_policy(policies_dir / "deid/dicom.yaml"), "s-00000000000000ac"
    )
    out = tmp_path / "d.ome.zarr"
    write_ome_zarr(source, plan, out, ConvertOptions())
    assert verify_output(out, plan, source) == []
    path, data, index = _shard(out)
    payloads = _payloads(data, index)
    first = payloads[0]
    assert first is not None and first.endswith(b"\xff\xd9")
    _rewrite(path, [first[:-2] + b"\xff\xfe\x00\x0bPAT-Smith\xff\xd9", *payloads[1:]])
    problems = verify_output(out, plan, source)
    assert problems == ["level 0: a chunk fails the payload check (jpeg.com)"], problems
