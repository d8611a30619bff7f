"""The audit re-open judges each output as it was written (conversion mode, quality, pyramid),
and re-decodes CZI (czifile) and MRXS (OpenSlide) sources itself. Good outputs pass; damaged
ones (a chunk of zeros, another level's pixels, one pixel off, a tampered tile) are caught."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from bench.inputs import write_slide
from slidegate.audit import audit_output, verify_output
from slidegate.audit.pixels import area_half, psnr_floor
from slidegate.convert import ConvertOptions, write_ome_zarr
from slidegate.convert.codecs import register
from slidegate.deid import load_deid_policy, plan_deid
from slidegate.formats import read_facts
from slidegate.models import DeidPlan

PSEUDO = "s-00000000000000aa"


def _convert(source: Path, policies_dir: Path, out: Path, **opts: Any) -> DeidPlan:
    facts = read_facts(source, source.name)
    plan = plan_deid(facts, load_deid_policy(policies_dir / f"deid/{facts.format}.yaml"), PSEUDO)
    write_ome_zarr(source, plan, out, ConvertOptions(**opts))
    return plan


def _array(out: Path, level: int) -> Any:
    register()  # the JPEG codec, to write damage into a JPEG-encoded array
    return zarr.open_array(str(out / str(level)), mode="r+")


@pytest.fixture(scope="module")
def svs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_slide(tmp_path_factory.mktemp("svs") / "s.svs", (1100, 1500), tile=256)


JPEG_2X = ConvertOptions(mode="jpeg", quality=85, pyramid="2x", chunk=256, shard=512)


@pytest.fixture
def jpeg_2x(svs: Path, policies_dir: Path, tmp_path: Path) -> tuple[Path, DeidPlan]:
    out = tmp_path / "o.ome.zarr"
    plan = _convert(svs, policies_dir, out, mode="jpeg", quality=85, pyramid="2x", chunk=256,
                    shard=512)  # fmt: skip
    return out, plan


def test_jpeg_2x_output_passes_only_with_its_conversion(jpeg_2x, svs: Path) -> None:  # type: ignore[no-untyped-def]
    out, plan = jpeg_2x
    assert len(zarr.open_group(str(out), mode="r").attrs["ome"]["multiscales"][0]["datasets"]) > 2
    assert verify_output(out, plan, svs, conversion=JPEG_2X) == []
    facts = read_facts(svs, svs.name)
    assert audit_output(out, facts, plan, conversion=JPEG_2X).ok
    # judged as a native pass-through output (what the audit did before), it cannot pass
    assert verify_output(out, plan, svs) != []


def test_jpeg_chunk_of_zeros_is_caught(jpeg_2x, svs: Path) -> None:  # type: ignore[no-untyped-def]
    out, plan = jpeg_2x
    _array(out, 0)[:, 256:512, 512:768] = 0
    problems = verify_output(out, plan, svs, conversion=JPEG_2X)
    assert len(problems) == 1 and problems[0].startswith("level 0: pixels differ"), problems
    assert "PSNR" in problems[0] and f"floor {psnr_floor(85):g} dB" in problems[0]


def test_jpeg_derived_level_with_wrong_pixels_is_caught(jpeg_2x, svs: Path) -> None:  # type: ignore[no-untyped-def]
    out, plan = jpeg_2x
    arr = _array(out, 1)
    _, h, w = arr.shape
    arr[:] = np.asarray(_array(out, 0)[:, :h, :w])  # level 1 holds a crop of level 0
    problems = verify_output(out, plan, svs, conversion=JPEG_2X)
    assert [p.split(":")[0] for p in problems] == ["level 1"], problems
    assert "area average" in problems[0]


@pytest.mark.parametrize("mode", ["lossless", "passthrough"])
def test_lossless_2x_is_exact_to_rounding_and_one_pixel_off_is_caught(
    svs: Path, policies_dir: Path, tmp_path: Path, mode: str
) -> None:
    opts = ConvertOptions(mode=mode, pyramid="2x", chunk=256, shard=512)  # type: ignore[arg-type]
    out = tmp_path / "o.ome.zarr"
    plan = _convert(svs, policies_dir, out, mode=mode, pyramid="2x", chunk=256, shard=512)
    assert verify_output(out, plan, svs, conversion=opts) == []
    arr = _array(out, 2)
    pixel = np.asarray(arr[:, 10:11, 20:21]).astype(int)
    arr[:, 10:11, 20:21] = np.where(pixel > 127, pixel - 3, pixel + 3).astype(np.uint8)
    problems = verify_output(out, plan, svs, conversion=opts)
    assert len(problems) == 1 and problems[0].startswith("level 2:"), problems


def test_area_half_is_the_block_mean() -> None:
    a = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    got = area_half(a)
    assert got.shape == (2, 3, 2)
    assert got[0, 0, 0] == (a[0, 0, 0] + a[0, 0, 1] + a[0, 1, 0] + a[0, 1, 1]) / 4
    assert got[1, 2, 1] == a[1, 4, 2]  # odd edges repeat the last row and column


# --- CZI and MRXS: the audit's own czifile / OpenSlide decode ----------------------------------


def _tamper(out: Path, level: int, y: int, x: int) -> None:
    arr = _array(out, level)
    pixel = np.asarray(arr[:, y : y + 1, x : x + 1])
    arr[:, y : y + 1, x : x + 1] = pixel ^ 1  # one grey level on one pixel


@pytest.mark.parametrize(
    ("compression", "rgb", "shape", "dtype"),
    [("zstd1", False, (520, 700, 2), "uint16"), ("lzw", True, (300, 260, 3), "uint8")],
)
def test_synthetic_czi_pixels_checked(
    policies_dir: Path, tmp_path: Path, compression: str, rgb: bool, shape: Any, dtype: str
) -> None:
    from slidegate.synth.czi import canary_meta, write_czi

    top = 4096 if dtype == "uint16" else 256
    image = np.random.default_rng(7).integers(0, top, shape, dtype=dtype)
    source = tmp_path / "c.czi"
    write_czi(source, image, canary_meta(7, 1), rgb=rgb, levels=3, tile=128,
              compression=compression)  # fmt: skip
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out)
    assert len(plan.levels) == 3
    facts = read_facts(source, source.name)
    result = audit_output(out, facts, plan)
    assert result.ok and result.pixels_checked, result.problems
    _tamper(out, len(plan.levels) - 1, 5, 7)
    problems = verify_output(out, plan, source)
    assert len(problems) == 1 and "czifile's decode" in problems[0], problems
    assert problems[0].startswith(f"level {len(plan.levels) - 1}:")


def test_real_czi_pixels_checked(real_slides: Path, policies_dir: Path, tmp_path: Path) -> None:
    source = real_slides / "zeiss-czi" / "mosaic_test.czi"
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out)
    assert verify_output(out, plan, source) == []
    _tamper(out, 0, 600, 1700)
    problems = verify_output(out, plan, source)
    assert len(problems) == 1 and "czifile's decode" in problems[0], problems


def test_synthetic_mrxs_pixels_checked(policies_dir: Path, tmp_path: Path) -> None:
    from slidegate.synth.mrxs import canary_meta, write_mrxs

    source = write_mrxs(tmp_path, "M0001", canary_meta(seed=3, n=1), seed=3, size=(512, 768))
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out)
    facts = read_facts(source, source.name)
    result = audit_output(out, facts, plan)
    assert result.ok and result.pixels_checked, result.problems
    _tamper(out, 1, 100, 200)
    problems = verify_output(out, plan, source)
    assert len(problems) == 1 and "OpenSlide's decode" in problems[0], problems
    assert problems[0].startswith("level 1:")
    # and a JPEG output of the same slide is judged by the PSNR floor, not exactly
    jpeg = ConvertOptions(mode="jpeg", quality=90)
    out2 = tmp_path / "j.ome.zarr"
    _convert(source, policies_dir, out2, mode="jpeg", quality=90)
    assert verify_output(out2, plan, source, conversion=jpeg) == []


@pytest.mark.parametrize("mode", ["jpeg", "lossless"])
def test_real_dicom_jpeg_and_2x_checked_by_pydicom(
    real_slides: Path, policies_dir: Path, tmp_path: Path, mode: str
) -> None:
    """DICOM frames read back one by one with pydicom for the JPEG and 2x comparisons."""
    source = real_slides / "dicom-wsi" / "cmu-1-small-region-wsi2dcm"
    opts = ConvertOptions(mode=mode, quality=90, pyramid="2x")  # type: ignore[arg-type]
    out = tmp_path / "o.ome.zarr"
    plan = _convert(source, policies_dir, out, mode=mode, quality=90, pyramid="2x")
    assert verify_output(out, plan, source, conversion=opts) == []
    _array(out, 1)[:, :256, :256] = 0
    problems = verify_output(out, plan, source, conversion=opts)
    assert len(problems) == 1 and problems[0].startswith("level 1:"), problems
    assert "pydicom's decode" in problems[0]
