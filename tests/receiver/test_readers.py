"""Which readers open which output, tested: dask, ome-zarr-py, ngff-zarr and ome-zarr-models
(strict: its ValidationWarning is an error) next to zarr-python and the receiver distribution,
in their own venv (tests/readers-requirements.txt: `make readers-venv`, or
SLIDEGATE_READERS_PYTHON). Outputs: pass-through real SVS, DICOM and OME-TIFF, lossless SVS,
and a crafted 16-bit single-channel slide with a 2x pyramid; pixels compared with zarr's read
here, which tests/receiver/test_receiver_reads.py compares with tifffile / pydicom."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr

from slidegate.convert import ConvertOptions, write_ome_zarr
from slidegate.deid import load_deid_policy, plan_deid
from slidegate.formats import read_facts

ROOT = Path(__file__).resolve().parents[2]

READERS = """
import json, sys, warnings
import numpy, zarr
from ome_zarr_models.exceptions import ValidationWarning
from ome_zarr_models.v05.image import Image

warnings.simplefilter("error", ValidationWarning)  # strict
root, names = sys.argv[1], sys.argv[2:]
report = {}
for name in names:
    path = root + "/" + name
    got = {}
    img = Image.from_zarr(zarr.open_group(path, mode="r"))
    omero = img.attributes.ome.model_dump().get("omero") or {}
    got["ome-zarr-models"] = {"ok": True, "channels": len(omero.get("channels", []))}
    import dask.array as da
    numpy.save(path + "-dask.npy", da.from_zarr(path, component="0").compute())
    got["dask"] = True
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader
    node = [n for n in Reader(parse_url(path, mode="r"))() if Multiscales.matches(n.zarr)][0]
    numpy.save(path + "-omezarr.npy", numpy.asarray(node.data[0]))
    got["ome-zarr-py"] = True
    try:
        import ngff_zarr
        ms = ngff_zarr.from_ngff_zarr(path)
        numpy.save(path + "-ngff.npy", numpy.asarray(ms.images[0].data))
        got["ngff-zarr"] = True
    except Exception as exc:
        got["ngff-zarr"] = type(exc).__name__ + ": " + str(exc)[:200]
    report[name] = got
print(json.dumps(report))
"""


@pytest.fixture(scope="session")
def readers_python() -> str:
    python = os.environ.get("SLIDEGATE_READERS_PYTHON")
    if python:
        return python
    subprocess.run(["make", "-s", "readers-venv"], cwd=ROOT, check=True, timeout=900)
    return str(ROOT / ".venv-readers" / "bin" / "python")


def _write(source: Path, policies_dir: Path, out: Path, **opts: Any) -> None:
    facts = read_facts(source, source.name)
    policy = load_deid_policy(policies_dir / f"deid/{facts.format}.yaml")
    write_ome_zarr(source, plan_deid(facts, policy, "s-00000000000000f1"), out,
                   ConvertOptions(**opts))  # fmt: skip


def test_readers_open_every_output_mode(
    readers_python: str, real_slides: Path, policies_dir: Path, tmp_path: Path
) -> None:
    g16 = tmp_path / "g16.tif"
    img = np.random.default_rng(4).integers(100, 1200, (700, 900), dtype=np.uint16)
    tifffile.imwrite(g16, img, tile=(256, 256), compression="zlib", metadata=None)
    outputs = {
        "svs": (real_slides / "aperio-svs/CMU-1-Small-Region.svs", {}),
        "dicom": (real_slides / "dicom-wsi/cmu-1-small-region-wsi2dcm", {}),
        "ome": (real_slides / "ome-tiff/OS-2-ndpi.ome.tif", {}),
        "svs-lossless": (
            real_slides / "aperio-svs/CMU-1-Small-Region.svs",
            {"mode": "lossless"},
        ),
        "g16-2x": (g16, {"pyramid": "2x", "chunk": 256, "shard": 512}),
    }
    for name, (source, opts) in outputs.items():
        _write(source, policies_dir, tmp_path / name, **opts)
    res = subprocess.run(
        [readers_python, "-c", READERS, str(tmp_path), *outputs],
        capture_output=True, text=True, cwd=tmp_path, timeout=900, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout)
    for name in outputs:
        want = np.asarray(zarr.open_group(str(tmp_path / name), mode="r")["0"][:])
        got = report[name]
        samples = want.shape[0]
        assert got["ome-zarr-models"] == {"ok": True, "channels": samples}, name
        for reader in ("dask", "omezarr"):
            assert np.array_equal(np.load(tmp_path / f"{name}-{reader}.npy"), want), (name, reader)
        jpeg = name in ("svs", "dicom", "ome")
        if jpeg:  # ngff-zarr 0.50 reads through zarrista (zarrs), which has no jpeg codec
            assert "jpeg" in str(got["ngff-zarr"]), (name, got["ngff-zarr"])
        else:
            assert got["ngff-zarr"] is True, (name, got["ngff-zarr"])
            assert np.array_equal(np.load(tmp_path / f"{name}-ngff.npy"), want), name
