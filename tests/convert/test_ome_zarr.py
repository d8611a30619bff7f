from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr

from slidegate.convert import ConvertOptions, write_ome_zarr
from slidegate.deid import load_deid_policy, plan_deid
from slidegate.errors import SlidegateError
from slidegate.formats import read_facts

PSEUDO = "s-0123456789abcdef"


@dataclass(frozen=True)
class Planted:
    path: Path
    base: np.ndarray
    canaries: list[str]


@pytest.fixture
def generic_pyramid(tmp_path: Path) -> Planted:
    """Tiled 3-level pyramid + stripped label page, canaries in descriptive tags and label."""
    base = np.random.default_rng(7).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    can = [f"CANARY-{what}-{uuid.uuid4().hex}" for what in ("desc", "sw", "artist", "priv", "lab")]
    path = tmp_path / "generic.tif"
    common: dict[str, Any] = {"photometric": "rgb", "compression": "zlib", "metadata": None}
    with tifffile.TiffWriter(path) as w:
        w.write(
            base, tile=(128, 128), description=can[0], software=can[1],
            datetime="2021:03:04 05:06:07", resolution=(40000, 40000), resolutionunit="CENTIMETER",
            extratags=[(315, "s", 0, can[2], True), (65000, "s", 0, can[3], True)], **common,
        )  # fmt: skip
        for f in (2, 4):
            w.write(base[::f, ::f], tile=(128, 128), subfiletype=1, **common)
        w.write(np.full((60, 150, 3), 200, np.uint8), description=f"label {can[4]}", **common)
    return Planted(path, base, [*can, "2021:03:04 05:06:07"])


SVS = "aperio-svs/CMU-1-Small-Region.svs"
CMU_PHI = [
    "CPAPERIOCS",
    "CMU-1",
    "12/29/09",
    "09:59:15",
    "b414003d-95c6-48b0-9369-8010ed517ba7",
    "1004486",
    "Aperio Image Library",
    "CMU-1-Small-Region",
]


def _all_bytes(out: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _assert_absent(out: Path, needles: list[str]) -> None:
    files = _all_bytes(out)
    assert files
    for needle in needles:
        raw = needle.encode()
        hits = [str(p.relative_to(out)) for p, data in files.items() if raw in data]
        assert not hits, f"{needle[:12]}... found in {hits}"


def _convert(source: Path, policy: Path, out: Path, **opts: Any) -> tuple[Any, Any, int]:
    facts = read_facts(source, source.name)
    plan = plan_deid(facts, load_deid_policy(policy), PSEUDO)
    written = write_ome_zarr(source, plan, out, ConvertOptions(**opts))
    return facts, plan, written


def test_convert_real_svs(real_slides: Path, policies_dir: Path, tmp_path: Path) -> None:
    source = real_slides / SVS
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    out = tmp_path / "staging" / f"{PSEUDO}.ome.zarr"
    facts, plan, written = _convert(source, policies_dir / "deid/svs.yaml", out)
    assert written == sum(len(b) for b in _all_bytes(out).values()) > 0

    group = zarr.open_group(str(out), mode="r")
    attrs: dict[str, Any] = dict(group.attrs)
    assert set(attrs) == {"ome", "slidegate"}
    assert attrs["ome"]["version"] == "0.5"
    (ms,) = attrs["ome"]["multiscales"]
    assert ms["name"] == PSEUDO
    assert [a["name"] for a in ms["axes"]] == ["c", "y", "x"]
    assert ms["axes"][1]["unit"] == "micrometer"
    assert attrs["slidegate"] == {"pseudonym": PSEUDO, "format": "svs", "metadata": plan.attributes}
    assert sorted(group.array_keys()) == [str(i) for i in range(len(facts.levels))]
    assert list(group.group_keys()) == []  # no label / macro / thumbnail
    with tifffile.TiffFile(source) as tif:
        for i, ds in enumerate(ms["datasets"]):
            lv = facts.levels[i]
            scale = ds["coordinateTransformations"][0]["scale"]
            assert scale == pytest.approx([1.0, 0.499 * lv.downsample, 0.499 * lv.downsample])
            arr: Any = group[ds["path"]]
            assert arr.shape == (3, lv.height, lv.width)
            assert arr.chunks == (3, 240, 240)  # pass-through: chunk = tile
            assert arr.shards == (3, 3120, 2400)  # whole tiles, no more than the level needs
            assert arr.metadata.dimension_names == ("c", "y", "x")
            expect = tif.series[0].levels[i].asarray()
            assert np.array_equal(arr[:].transpose(1, 2, 0), expect)

    # no identifying value anywhere in any output byte
    dropped = {f.name for f in plan.fields if f.action == "drop"}
    long_dropped = [f.value for f in facts.fields if f.name in dropped and len(f.value) >= 6]
    _assert_absent(out, CMU_PHI + long_dropped + [str(source), source.name])
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before == facts.sha256


def test_convert_generic_pyramid_multi_shard(generic_pyramid, policies_dir: Path, tmp_path):
    out = tmp_path / f"{PSEUDO}.ome.zarr"
    _convert(generic_pyramid.path, policies_dir / "deid/tiff.yaml", out, chunk=64, shard=256)
    group = zarr.open_group(str(out), mode="r")
    assert sorted(group.array_keys()) == ["0", "1", "2"]
    for i, factor in enumerate((1, 2, 4)):
        arr: Any = group[str(i)]
        assert arr.chunks == (3, 64, 64) and arr.shards == (3, 256, 256)
        expect = generic_pyramid.base[::factor, ::factor]
        assert np.array_equal(arr[:].transpose(1, 2, 0), expect)
    attrs: dict[str, Any] = dict(group.attrs)
    (ms,) = attrs["ome"]["multiscales"]
    assert ms["datasets"][2]["coordinateTransformations"][0]["scale"] == pytest.approx(
        [1.0, 1.0, 1.0]
    )
    assert attrs["slidegate"]["metadata"] == {}
    _assert_absent(out, generic_pyramid.canaries)


def test_unknown_mpp_has_no_units(real_slides: Path, policies_dir: Path, tmp_path: Path) -> None:
    facts = read_facts(real_slides / SVS, "x").model_copy(update={"mpp_x": None, "mpp_y": None})
    plan = plan_deid(facts, load_deid_policy(policies_dir / "deid/svs.yaml"), PSEUDO)
    out = tmp_path / "o.ome.zarr"
    write_ome_zarr(real_slides / SVS, plan, out)
    meta = json.loads((out / "zarr.json").read_text())
    (ms,) = meta["attributes"]["ome"]["multiscales"]
    assert all("unit" not in axis for axis in ms["axes"])
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 1.0, 1.0]


def test_rerun_restarts_cleanly(generic_pyramid, policies_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / f"{PSEUDO}.ome.zarr"
    _convert(generic_pyramid.path, policies_dir / "deid/tiff.yaml", out)
    (out / "stray.bin").write_bytes(b"left over from a crashed run")
    (out / "9").mkdir()
    _convert(generic_pyramid.path, policies_dir / "deid/tiff.yaml", out)
    assert not (out / "stray.bin").exists() and not (out / "9").exists()
    assert zarr.open_array(str(out / "0"), mode="r").shape == (3, 600, 800)


def test_refuses_to_delete_foreign_folder(generic_pyramid, policies_dir: Path, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("do not delete")
    with pytest.raises(SlidegateError, match="not a Zarr group"):
        _convert(generic_pyramid.path, policies_dir / "deid/tiff.yaml", out)
    assert (out / "thesis.txt").exists()


def test_options_validated() -> None:
    with pytest.raises(ValueError, match="multiple"):
        ConvertOptions(chunk=512, shard=1000)
