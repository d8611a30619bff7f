"""A receiver installs the receiver distribution (receiver/) next to zarr and writes no code:
pass-through releases of a real SVS, a DICOM WSI and an OME-TIFF read with zarr-python in a
venv holding nothing but zarr and that distribution (built by `make receiver-venv` from the
folder, or given as SLIDEGATE_RECEIVER_PYTHON), with pixels equal to tifffile's / pydicom's
decode of the source. The reader imports no slidegate module and calls no registration code:
zarr finds the codecs through the distribution's `zarr.codecs` entry points."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile

from slidegate.convert import ConvertOptions, write_ome_zarr
from slidegate.deid import load_deid_policy, plan_deid
from slidegate.formats import read_facts
from slidegate.models import DeidPlan
from tests.convert.test_passthrough import _libjpeg_rgb

ROOT = Path(__file__).resolve().parents[2]
SVS = "aperio-svs/CMU-1-Small-Region.svs"
OME_TIFF = "ome-tiff/OS-2-ndpi.ome.tif"
DICOM = "dicom-wsi/cmu-1-small-region-wsi2dcm"

READER = """
import json, sys
import numpy, zarr
out = {}
for name in sys.argv[2:]:
    g = zarr.open_group(sys.argv[1] + "/" + name, mode="r")
    ms = g.attrs["ome"]["multiscales"][0]
    codecs = []
    for d in ms["datasets"]:
        a = g[d["path"]]
        numpy.save(sys.argv[1] + "/" + name + "-" + d["path"] + ".npy", a[:])
        inner = a.metadata.to_dict()["codecs"][0]["configuration"]["codecs"]
        codecs.append([c["name"] for c in inner])
    out[name] = codecs
leaked = [m for m in sys.modules if m.startswith("slidegate") and m != "slidegate_receiver"
          and not m.startswith("slidegate_receiver.")]
assert not leaked, leaked
assert "slidegate_receiver.codecs" in sys.modules  # loaded by zarr from the entry point
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def receiver_python() -> str:
    python = os.environ.get("SLIDEGATE_RECEIVER_PYTHON")
    if python:
        return python
    subprocess.run(["make", "-s", "receiver-venv"], cwd=ROOT, check=True, timeout=600)
    return str(ROOT / ".venv-receiver" / "bin" / "python")


def _release(source: Path, policies_dir: Path, out: Path) -> DeidPlan:
    facts = read_facts(source, source.name)
    policy = load_deid_policy(policies_dir / f"deid/{facts.format}.yaml")
    plan = plan_deid(facts, policy, "s-00000000000000d1")
    write_ome_zarr(source, plan, out, ConvertOptions())  # the default: pass-through
    return plan


def _dicom_reference(source: Path, name: str) -> np.ndarray:
    """pydicom's decode of one DICOM instance's frames (raw YBR, libjpeg's integer RGB
    conversion: see tests/convert/test_passthrough.py), tiled into the total pixel matrix."""
    import pydicom
    from pydicom.pixels import pixel_array

    ds = pydicom.dcmread(source / name, stop_before_pixels=True)
    rows, cols = int(ds.Rows), int(ds.Columns)
    h, w = int(ds.TotalPixelMatrixRows), int(ds.TotalPixelMatrixColumns)
    across = -(-w // cols)
    frames = _libjpeg_rgb(pixel_array(str(source / name), raw=True))
    full = np.zeros((-(-h // rows) * rows, across * cols, 3), np.uint8)
    for k, frame in enumerate(frames):
        r, c = divmod(k, across)
        full[r * rows : (r + 1) * rows, c * cols : (c + 1) * cols] = frame
    return full[:h, :w]


def test_releases_read_with_zarr_and_the_receiver_only(
    receiver_python: str, real_slides: Path, policies_dir: Path, tmp_path: Path
) -> None:
    names = {"svs": SVS, "ome": OME_TIFF, "dicom": DICOM}
    plans = {k: _release(real_slides / v, policies_dir, tmp_path / k) for k, v in names.items()}
    res = subprocess.run(
        [receiver_python, "-c", READER, str(tmp_path), *names],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    codecs = json.loads(res.stdout)
    for k in names:  # level 0 of each is pass-through: the registered jpeg codec
        assert codecs[k][0] == ["transpose", "jpeg"], (k, codecs[k])
        assert len(codecs[k]) == len(plans[k].levels)
    for k in ("svs", "ome"):
        with tifffile.TiffFile(real_slides / names[k]) as tif:
            for i, level in enumerate(tif.series[0].levels[: len(plans[k].levels)]):
                got = np.load(tmp_path / f"{k}-{i}.npy").transpose(1, 2, 0)
                assert np.array_equal(got, level.asarray()), (k, i)
    for i, name in ((0, "level-0-frames-0-30.dcm"), (1, "level-1-frames-0-9.dcm")):
        got = np.load(tmp_path / f"dicom-{i}.npy").transpose(1, 2, 0)
        assert np.array_equal(got, _dicom_reference(real_slides / DICOM, name)), i
