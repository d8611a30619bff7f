"""The engines on the real samples (../shared/data/real-slides): the associated label and macro
images, which carry identity, are found; every real slide's pyramid (its check level) passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import tifffile

from slidegate.burnin import NeedleIndex, check_image
from slidegate.burnin.check import pick_level, to_rgb
from slidegate.formats import open_reader, read_facts

pytestmark = pytest.mark.slow

PYRAMIDS = [
    "aperio-svs/CMU-1-Small-Region.svs",
    "hamamatsu-ndpi/test3-DAPI-2-387.ndpi",
    "perkinelmer-qptiff/small_vectra.qptiff",
    "ome-tiff/OS-2-ndpi.ome.tif",
    "generic-tiff/boxes.tiff",
    "dicom-wsi/highdicom_sm_image.dcm",
    "dicom-wsi/wsi2dcm_raw.dcm",
    "dicom-wsi/cmu-1-small-region-wsi2dcm",
    "zeiss-czi/mosaic_test.czi",
]


def _series(path: Path, name: str) -> np.ndarray:
    with tifffile.TiffFile(path) as tif:
        return np.asarray(next(s for s in tif.series if s.name == name).asarray())


@pytest.mark.parametrize("name", PYRAMIDS)
def test_real_pyramids_pass(real_slides: Path, name: str) -> None:
    path = real_slides / name
    facts = read_facts(path, path.name)
    i = pick_level([(lv.height, lv.width) for lv in facts.levels])
    lv = facts.levels[i]
    with open_reader(path) as reader:
        data = reader.read(lv, 0, 0, lv.height, lv.width)
    report = check_image(to_rgb(data), NeedleIndex.of(f.value for f in facts.fields), level=i)
    assert report.flagged == 0, report.findings


def test_real_labels_and_macros_are_found(real_slides: Path) -> None:
    none = NeedleIndex.of([])
    macro = _series(real_slides / "hamamatsu-ndpi" / "test3-DAPI-2-387.ndpi", "Macro")
    ndpi = check_image(macro, none)
    assert ndpi.flagged >= 5 and {"id-run"} <= {f.shape for f in ndpi.findings}
    label = _series(real_slides / "aperio-svs" / "CMU-1-Small-Region.svs", "Label")
    # the handwritten "CMU-1" is read as "CMu-I" (confidence ~0.67): certain against the
    # slide's own file name, the needle the egress gate has for it
    cmu = check_image(label, NeedleIndex.of(["CMU-1-Small-Region"]))
    assert cmu.flagged == 1 and cmu.findings[0].needle
    ds = pydicom.dcmread(real_slides / "dicom-wsi" / "ezwsi_label_test_wsi.dcm")
    ez = check_image(to_rgb(ds.pixel_array), none)
    assert [f.shape for f in ez.findings if f.kind == "barcode"] == ["barcode:PDF417"]
