"""The release README's parts (issue 14 item 2), without a release run: the codebook follows
the policies that produced cohort.csv, the slide table what an OME-Zarr says of itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from slidegate.profile import load_policies
from slidegate.publish.readme import build_readme, codebook, codec_label, describe_slide
from slidegate.settings import DEFAULT_POLICIES_DIR


def test_codebook_covers_every_released_column_with_its_levels() -> None:
    pol = load_policies(DEFAULT_POLICIES_DIR, "controlled-access")
    columns = pol.metadata.released_columns()
    book = {c.name: c for c in codebook(columns, pol.metadata, pol.risk, pol.hierarchies, {})}
    assert list(book) == columns
    assert all(c.meaning != "(no metadata policy rule)" for c in book.values())
    assert "10-year bands" in book["age"].values and "`90+`" in book["age"].values
    assert "kind `p`" in book["patient"].generalisation
    # a level risk mitigation raised is named, with the values it allows
    raised = codebook(["diagnosis", "site"], pol.metadata, pol.risk, pol.hierarchies,
                      {"diagnosis": "category", "site": "*"})  # fmt: skip
    assert "raised from code" in raised[0].generalisation
    assert "ICD-10 category (`C18`)" in raised[0].values
    assert "suppressed (`*`)" in raised[1].values
    # a column no rule released is flagged, not guessed
    assert codebook(["extra"], pol.metadata, pol.risk, pol.hierarchies, {})[0].meaning.startswith(
        "(no metadata"
    )


def test_slide_entry_from_the_ome_zarr_itself(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "s.ome.zarr", mode="w", zarr_format=3)
    root.create_array("0", data=np.zeros((2, 64, 96), "uint16"), chunks=(1, 32, 32))
    root.create_array("1", data=np.zeros((2, 32, 48), "uint16"), chunks=(1, 32, 32),
                      compressors=None)  # fmt: skip
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": n, "type": "space", "unit": "micrometer"} for n in ("y", "x")
    ]
    datasets = [
        {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [1, s, s]}]}
        for i, s in enumerate((0.5, 1.0))
    ]
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{"axes": axes, "datasets": datasets}],
        "omero": {"channels": [{"label": "DAPI"}, {"label": "FITC"}]},
    }
    entry = describe_slide("s-0123456789abcdef", "czi", zarr.open_group(tmp_path / "s.ome.zarr"))
    assert (entry.levels, entry.width, entry.height, entry.channels) == (2, 96, 64, 2)
    assert entry.pixel_size == (0.5, 0.5) and entry.unit == "micrometer"
    assert entry.labels == ("DAPI", "FITC") and entry.dtype == "uint16"
    assert entry.codec == "zstd, level 1: uncompressed"  # zarr's default, then none
    text = build_readme(
        release="r1", profile="open-access", access="open", date="2026-12-04", version="0",
        counts={"approved": 1, "withheld": 0, "quarantined": 0}, columns=[], slides=[entry],
    )  # fmt: skip
    row = next(line for line in text.splitlines() if line.startswith("| `s-0123"))
    assert "CZI (czi)" in row and "| 2 |" in row and "0.5 micrometer" in row
    assert "2 (DAPI, FITC)" in row


def test_codec_labels() -> None:
    sharded = [{"name": "sharding_indexed", "configuration": {"codecs": [
        {"name": "transpose"}, {"name": "jpeg"}], "index_codecs": []}}]  # fmt: skip
    assert codec_label(sharded) == "jpeg (sharded)"
    assert codec_label([{"name": "bytes"}, {"name": "blosc", "configuration": {"cname": "zstd"}}]) \
        == "blosc zstd"  # fmt: skip
    assert codec_label([{"name": "bytes"}]) == "uncompressed"
