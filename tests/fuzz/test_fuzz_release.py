"""A real release of a few damaged copies of real slides and one good slide: the damaged ones
are quarantined with a reason (one of them only by the per-slide memory bound, which stops its
child process), the good one is published, and no source byte changes."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.fuzz.craft import deflate_bomb
from tests.fuzz.harness import tree_sha256
from tests.fuzz.mutate import tiff_ifds
from tests.releasing import COHORT_HEADER

#: slow: a real release costs ~100 s on the loaded CI machine (the default run is at its limit);
#: the bound itself is tested by default in test_bounded.py and test_bound_stage.py
pytestmark = [pytest.mark.integration, pytest.mark.slow]
RELEASE = "fuzz-1"
MEMORY_MB = 1024  # the bomb decodes to 805 MB on top of ~350 MB of imports


def _ifd_loop(data: bytes) -> bytes:
    """The last IFD's next pointer back to the first (raw bytes)."""
    order, big, offsets = tiff_ifds(data)
    assert not big and len(offsets) > 1
    (n,) = struct.unpack_from(order + "H", data, offsets[-1])
    out = bytearray(data)
    struct.pack_into(order + "I", out, offsets[-1] + 2 + n * 12, offsets[0])
    return bytes(out)


def _release(tmp_path: Path, source: Path, rows: list[str]) -> tuple[dict[str, Any], Path]:
    from distributed import LocalCluster

    from flows.release import dask_runner, release_cohort
    from slidegate.settings import Settings

    (tmp_path / "cohort.csv").write_text(COHORT_HEADER + "".join(f"{r}\n" for r in rows))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"release: {RELEASE}\nsource: {source}\ncohort: cohort.csv\nprofile: restricted\n"
        "target: out\n"
    )
    with LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        settings = Settings(
            work_dir=tmp_path / "work",
            dask_address=cluster.scheduler_address,
            registry_url=f"sqlite:///{tmp_path / 'registry.sqlite'}",
            slide_memory_mb=MEMORY_MB,
            slide_timeout_s=120,
        )
        result: dict[str, Any] = release_cohort.with_options(task_runner=dask_runner(settings))(
            spec=str(spec), settings=settings
        )
    return result, tmp_path / "out" / RELEASE


def test_damaged_real_slides_quarantined_good_one_published(
    real_slides: Path, prefect_server: object, tmp_path: Path
) -> None:
    source = tmp_path / "slides"
    source.mkdir()
    svs = (real_slides / "aperio-svs/CMU-1-Small-Region.svs").read_bytes()
    (source / "good.tiff").write_bytes((real_slides / "generic-tiff/boxes.tiff").read_bytes())
    (source / "cut.svs").write_bytes(svs[: len(svs) * 6 // 10])
    (source / "loop.svs").write_bytes(_ifd_loop(svs))
    (source / "head.svs").write_bytes(svs[:4])
    deflate_bomb(source / "bomb.tiff")
    for p in source.iterdir():
        p.chmod(0o444)
    before = tree_sha256(source)
    names = ["good.tiff", "cut.svs", "loop.svs", "head.svs", "bomb.tiff"]
    rows = [
        f"{n},P{i},B{i},S{i},{50 + i},F,C50.9,breast,2020-01-0{i + 1}" for i, n in enumerate(names)
    ]

    result, release = _release(tmp_path, source, rows)

    assert result["published"] is True
    assert result["counts"]["approved"] == 1 and result["counts"]["quarantined"] == 4
    reports = json.loads((release / "reports" / "slides.json").read_text())
    reasons = sorted(r["reason"] for r in reports if r["status"] == "quarantined")
    print(reasons)
    assert f"limit: memory bound exceeded ({MEMORY_MB} MiB per slide)" in reasons
    assert "corrupt: IFD loop" in reasons
    assert all(r.startswith(("corrupt:", "limit:")) for r in reasons)
    assert not any(n in " ".join(reasons) for n in names)
    manifest = json.loads((release / "manifest.json").read_text())
    slides = {
        o["path"].split("/")[1] for o in manifest["objects"] if o["path"].startswith("slides/")
    }
    (approved,) = [r for r in reports if r["status"] == "approved"]
    assert slides == {f"{approved['slide']}.ome.zarr"}
    assert tree_sha256(source) == before
    for p in source.iterdir():
        p.chmod(0o644)
