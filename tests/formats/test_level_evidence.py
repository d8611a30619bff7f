"""An unmarked label-like page is not a pyramid level: pages are levels only when they are a
consistent downsample of the level above (aspect ratio and content), written with tifffile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageDraw

from slidegate.formats import read_facts

SVS = Path("aperio-svs/CMU-1-Small-Region.svs")


@pytest.fixture(scope="module")
def tissue(real_slides: Path) -> np.ndarray:
    """2048 x 1536 of real H&E from the shared SVS (tiled by reflection where it is smaller)."""
    base = tifffile.imread(real_slides / SVS, key=0)
    return np.pad(base, ((0, max(0, 1536 - base.shape[0])), (0, 0), (0, 0)), mode="reflect")[
        :1536, :2048
    ]


def _reduced(img: np.ndarray, factor: int) -> np.ndarray:
    h, w = img.shape[0] // factor, img.shape[1] // factor
    return np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BOX))


def _label(h: int, w: int) -> np.ndarray:
    """A slide label: white, a dark barcode-like block and printed text."""
    img = Image.new("RGB", (w, h), (250, 250, 250))
    draw = ImageDraw.Draw(img)
    draw.rectangle((w // 10, h // 10, w // 2, h // 2), fill=(10, 10, 10))
    for i in range(0, w, 12):
        draw.line((i, h // 2 + 10, i, h - 10), fill=(0, 0, 0), width=4)
    draw.text((w // 2 + 10, h // 5), "ROE JANE 1970-01-01", fill=(0, 0, 0))
    return np.asarray(img)


SVS_DESC = "Aperio Image Library v12.0.15 \r\n2048x1536 [0,0 2048x1536] (256x256) JPEG/RGB Q=80"


def _svs(path: Path, tissue: np.ndarray, extra: np.ndarray) -> None:
    with tifffile.TiffWriter(path) as tif:
        kw = {"photometric": "rgb", "compression": "jpeg", "tile": (256, 256)}
        tif.write(tissue, description=SVS_DESC + "|AppMag = 20|MPP = 0.5", **kw)
        tif.write(_reduced(tissue, 8), photometric="rgb", compression="jpeg", description=SVS_DESC)
        tif.write(_reduced(tissue, 4), description=SVS_DESC + "|level", **kw)
        tif.write(extra, description=SVS_DESC + "|unmarked", **kw)  # no label/macro marker


def _generic(path: Path, tissue: np.ndarray, extra: np.ndarray) -> None:
    with tifffile.TiffWriter(path) as tif:
        kw = {"photometric": "rgb", "compression": "zlib", "tile": (256, 256)}
        tif.write(tissue, **kw)
        tif.write(_reduced(tissue, 2), subfiletype=1, **kw)
        tif.write(extra, subfiletype=1, **kw)  # "reduced resolution", but a label


@pytest.mark.parametrize("writer", [_svs, _generic], ids=["svs", "tiff"])
@pytest.mark.parametrize("shape", [(360, 480), (300, 700)], ids=["same-aspect", "other-aspect"])
def test_unmarked_label_page_is_not_a_level(
    tmp_path: Path,
    tissue: np.ndarray,
    writer,
    shape: tuple[int, int],  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "slide.tif"
    writer(path, tissue, _label(*shape))
    facts = read_facts(path, "slide")
    sizes = [(lv.height, lv.width) for lv in facts.levels]
    assert shape not in sizes  # the label is no pyramid level ...
    assert any(a.height == shape[0] and a.width == shape[1] for a in facts.associated)
    assert len(facts.levels) == 2  # ... while the real reduced level still is one
    assert sizes[0] == (1536, 2048)


@pytest.mark.parametrize("writer", [_svs, _generic], ids=["svs", "tiff"])
def test_a_real_reduced_level_is_kept(tmp_path: Path, tissue: np.ndarray, writer) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "slide.tif"
    writer(path, tissue, _reduced(tissue, 16 if writer is _svs else 4))
    facts = read_facts(path, "slide")
    assert len(facts.levels) == 3
