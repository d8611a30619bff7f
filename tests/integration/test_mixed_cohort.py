"""No slide can sink a release (issue 13 item 3): a 2-channel 16-bit fluorescence slide, the real
16-bit CZI mosaic and an RGB slide released together next to five damaged files publish a
manifest with the good ones; the damaged ones are quarantined each with its own reason.

Once a 2-channel slide next to an RGB one failed the whole release in the linkage attack
(`ValueError: all input arrays must have the same shape`). The fixtures are written with
tifffile (no slidegate synth), the real files are copied byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from tests.releasing import release_folder

#: a real release of nine files on one worker: minutes on a loaded machine (make test-all)
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _tissue(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = rng.random((h // 32, w // 32)) > 0.55
    return np.kron(blocks, np.ones((32, 32), bool))[:h, :w]


def write_two_channel(path: Path) -> np.ndarray:
    """A 2-channel uint16 fluorescence OME-TIFF (CYX, tiled, one SubIFD level)."""
    mask = _tissue(1024, 1280, 1)
    data = np.stack([np.where(mask, 30000, 300), np.where(mask, 9000, 120)]).astype(np.uint16)
    with tifffile.TiffWriter(path, ome=True) as tw:
        opts = {"tile": (256, 256), "photometric": "minisblack", "compression": "zlib"}
        tw.write(data, subifds=1, metadata={"axes": "CYX"}, **opts)  # type: ignore[arg-type]
        tw.write(data[:, ::2, ::2], subfiletype=1, **opts)  # type: ignore[arg-type]
    return data


def write_rgb(path: Path) -> None:
    """A brightfield-like RGB tiled pyramidal TIFF (two levels as SubIFDs)."""
    mask = _tissue(1024, 1024, 2)[..., None]
    rgb = np.where(mask, np.array([150, 70, 140], np.uint8), np.uint8(238)).astype(np.uint8)
    with tifffile.TiffWriter(path) as tw:
        opts = {"tile": (256, 256), "photometric": "rgb", "compression": "zlib"}
        tw.write(rgb, subifds=1, **opts)  # type: ignore[arg-type]
        tw.write(rgb[::2, ::2], subfiletype=1, **opts)  # type: ignore[arg-type]


def damaged_files(folder: Path, real: Path) -> dict[str, str]:
    """Five damaged files next to the good ones: file name -> how it is damaged."""
    svs = (real / "aperio-svs" / "CMU-1-Small-Region.svs").read_bytes()
    czi = (real / "zeiss-czi" / "mosaic_test.czi").read_bytes()
    (folder / "empty.svs").write_bytes(b"")
    (folder / "cut.svs").write_bytes(svs[: len(svs) // 3])
    (folder / "cut.czi").write_bytes(czi[: len(czi) // 2])
    (folder / "noise.ndpi").write_bytes(np.random.default_rng(3).bytes(40000))
    (folder / "no-preamble.dcm").write_bytes(b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100" + b"\0" * 64)
    return {
        "empty.svs": "zero bytes",
        "cut.svs": "truncated SVS",
        "cut.czi": "truncated CZI",
        "noise.ndpi": "random bytes",
        "no-preamble.dcm": "a DICOM fragment",
    }


def test_two_channel_rgb_and_damaged_slides_release_the_good_ones(
    real_slides: Path, prefect_server: object, tmp_path: Path
) -> None:
    source = tmp_path / "slides"
    source.mkdir()
    two = write_two_channel(source / "fluo2.ome.tif")
    write_rgb(source / "he.tif")
    shutil.copyfile(real_slides / "zeiss-czi" / "mosaic_test.czi", source / "mosaic.czi")
    damaged = damaged_files(source, real_slides)
    good = ["fluo2.ome.tif", "he.tif", "mosaic.czi"]
    rows = [
        f"{name},P{i},B{i},S{i},{50 + i},{'MF'[i % 2]},C50.9,breast,2020-01-0{1 + i % 9}"
        for i, name in enumerate([*good, *damaged])
    ]
    (tmp_path / "run").mkdir()
    result, release = release_folder(tmp_path / "run", source, "mixed-1", rows)

    assert result["published"] is True
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["objects"]
    slides = json.loads((release / "reports" / "slides.json").read_text())
    status = {r["slide"]: (r["status"], r["reason"]) for r in slides}
    approved = [s for s, (st, _) in status.items() if st == "approved"]
    quarantined = {s: why for s, (st, why) in status.items() if st == "quarantined"}
    assert len(approved) == len(good), status
    assert len(quarantined) == len(damaged), status
    assert all(
        why and why.split(":")[0] in {"corrupt", "unsupported"} for why in quarantined.values()
    )
    published = {p.name for p in (release / "slides").iterdir()}
    assert published == {f"{s}.ome.zarr" for s in approved}
    # the 2-channel slide keeps its channels and pixels
    two_channel = [
        zarr.open_group(release / "slides" / name, mode="r")
        for name in published
        if zarr.open_group(release / "slides" / name, mode="r")["0"].shape[0] == 2
    ]
    assert len(two_channel) == 1
    np.testing.assert_array_equal(two_channel[0]["0"][:], two)
    text = " ".join(p.read_text(errors="ignore") for p in (release / "reports").glob("*.json"))
    assert not any(name in text for name in [*good, *damaged])
