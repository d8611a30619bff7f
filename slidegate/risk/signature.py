"""A slide's signature for the risk model and the ledger, computed where its output was written.

The slide's task returns this (a feature vector and two hashes, a few kilobytes) instead of the
cohort stage re-reading every staged output: the cohort stage never holds images, so its memory
grows with n x feature size, and a slide whose pixels cannot be read is quarantined by its own
task instead of failing the cohort.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slidegate.models import SlideSignature
from slidegate.risk.extractors import features_for
from slidegate.risk.images import perceptual_hash, zarr_lowest_level, zarr_tile_hash

if TYPE_CHECKING:
    from slidegate.risk.policy import ImageLinkage


def sign_output(output: Path | Any, linkage: ImageLinkage | None = None) -> SlideSignature:
    """The signature of a slidegate OME-Zarr (a local path or an open group), its features by
    the extractor the risk policy's image linkage names (the built-in one by default)."""
    img = zarr_lowest_level(output)
    return SlideSignature(
        features=tuple(float(v) for v in features_for(img, linkage)),
        phash=perceptual_hash(img),
        tile_sha256=zarr_tile_hash(output),
    )


def feature_vector(sig: SlideSignature) -> np.ndarray:
    return np.asarray(sig.features, dtype=np.float64)
