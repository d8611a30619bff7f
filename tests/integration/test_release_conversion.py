"""A real release with `conversion: {mode: jpeg, pyramid: 2x}` publishes its slides: the audit
judges JPEG levels by the PSNR floor and derived levels against its own area average instead of
quarantining every slide ("re-open check failed")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from slidegate.convert.codecs import register
from slidegate.settings import DEFAULT_POLICIES_DIR, Settings

pytestmark = pytest.mark.integration


def test_jpeg_2x_release_publishes(cluster, prefect_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from flows.release import dask_runner, release_cohort
    from slidegate.synth import generate_cohort

    cohort = generate_cohort(tmp_path / "c", slides=2, patients=2, seed=9, base_size=(1024, 1536))
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, policies)
    profile = policies / "profiles" / "restricted.yaml"
    text = profile.read_text()
    for old, new in (("mode: passthrough", "mode: jpeg"), ("pyramid: native", "pyramid: 2x")):
        assert old in text
        text = text.replace(old, new)
    profile.write_text(text)
    spec = cohort.root / "jpeg2x.yaml"
    spec.write_text(
        "release: jpeg2x\nsource: slides\ncohort: cohort.csv\nprofile: restricted\n"
        "target: out\ncanaries: canaries.json\n"
    )
    settings = Settings(
        work_dir=tmp_path / "work", dask_address=cluster.scheduler_address, policies_dir=policies
    )
    result = release_cohort.with_options(task_runner=dask_runner(settings))(
        spec=str(spec), settings=settings
    )
    reports = json.loads(
        (tmp_path / "work" / "releases" / "jpeg2x" / "reports" / "slides.json").read_text()
    )
    assert result["published"] is True, result
    assert result["counts"]["quarantined"] == 0, [r.get("reason") for r in reports]
    assert result["counts"]["approved"] >= 1
    released = sorted((cohort.root / "out" / "jpeg2x" / "slides").glob("*.ome.zarr"))
    assert len(released) == result["counts"]["approved"]
    register()
    for out in released:
        group = zarr.open_group(str(out), mode="r")
        datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
        shapes = [group[d["path"]].shape for d in datasets]
        assert len(shapes) >= 3 and shapes[1][1:] == (512, 768), shapes  # 2x steps
        codecs = json.loads((out / "0" / "zarr.json").read_text())["codecs"]
        assert "jpeg" in json.dumps(codecs).lower()
    # the released base is a JPEG of one of the sources (PSNR well above the floor)
    sources = [tifffile.imread(p) for p in sorted(cohort.slides_dir.iterdir()) if _tiff(p)]
    base = np.asarray(zarr.open_group(str(released[0]), mode="r")["0"][:]).transpose(1, 2, 0)
    best = max(_psnr(base, s) for s in sources if s.shape == base.shape)
    assert best > 30


def _tiff(path: Path) -> bool:
    try:
        with tifffile.TiffFile(path):
            return True
    except Exception:
        return False


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))
