"""The portable (lossless) output opens with ome-zarr-py, the NGFF reference reader.

ome-zarr-py pins pydantic below ours, so it lives in its own venv (tests/omezarr-requirements.txt,
built by `make test` as .venv-omezarr); set SLIDEGATE_OMEZARR_PYTHON to its python to run this
test by hand. The reader runs in that interpreter: ome_zarr.io.parse_url + ome_zarr.reader.Reader
must find the image node with its multiscales, every level's shape, and the pixels, which are
compared here with tifffile's decode of the source levels.
"""

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

SVS = "aperio-svs/CMU-1-Small-Region.svs"

OMEZARR_READER = """
import json, sys
import numpy
from ome_zarr.io import parse_url
from ome_zarr.reader import Multiscales, Reader

location = parse_url(sys.argv[1], mode="r")
assert location is not None, "ome-zarr does not see an NGFF group"
nodes = list(Reader(location)())
image = [n for n in nodes if Multiscales.matches(n.zarr)]
assert image, "no multiscales image node"
node = image[0]
for k, level in enumerate(node.data):
    numpy.save(sys.argv[2] + "/omezarr-" + str(k) + ".npy", numpy.asarray(level))
print(json.dumps({
    "version": location.version,
    "axes": [a["name"] for a in node.metadata["axes"]],
    "shapes": [list(level.shape) for level in node.data],
    "paths": [d["path"] for d in location.root_attrs["multiscales"][0]["datasets"]],
}))
"""


def test_lossless_output_opens_with_ome_zarr_py(
    real_slides: Path, policies_dir: Path, tmp_path: Path
) -> None:
    python = os.environ.get("SLIDEGATE_OMEZARR_PYTHON")
    if not python:
        pytest.skip(
            "SLIDEGATE_OMEZARR_PYTHON not set (ome-zarr-py cannot share our venv; `make test` "
            "builds .venv-omezarr from tests/omezarr-requirements.txt)"
        )
    source = real_slides / SVS
    facts = read_facts(source, source.name)
    policy = load_deid_policy(policies_dir / f"deid/{facts.format}.yaml")
    plan = plan_deid(facts, policy, "s-0123456789abcdef")
    out = tmp_path / "o.ome.zarr"
    write_ome_zarr(source, plan, out, ConvertOptions(mode="lossless"))
    run = subprocess.run(
        [python, "-c", OMEZARR_READER, str(out), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["version"] == "0.5"
    assert seen["axes"] == ["c", "y", "x"]
    assert seen["paths"] == [str(i) for i in range(len(plan.levels))]
    assert seen["shapes"] == [[lv.samples, lv.height, lv.width] for lv in plan.levels]
    with tifffile.TiffFile(source) as tif:
        levels = [lv.asarray() for lv in tif.series[0].levels]
    for k in range(len(plan.levels)):
        got = np.load(tmp_path / f"omezarr-{k}.npy").transpose(1, 2, 0)
        assert np.array_equal(got, levels[k]), f"level {k}"
