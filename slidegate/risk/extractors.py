"""Which feature extractor a cohort's slides are described by, and how their pairs are scored.

The built-in extractor is the placement-invariant polar descriptor (slidegate.risk.registration),
scored by registration (phase correlation over rotations and flips). A risk policy may name a
steward's ONNX model instead (slidegate.risk.onnx): its embeddings of the registered tissue are
scored by plain cosine, the best over the tissue's orientations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from slidegate.risk.linkage import Similarity
from slidegate.risk.registration import registration_similarity, slide_descriptor

if TYPE_CHECKING:
    from slidegate.risk.policy import ImageLinkage


def similarity_for(link: ImageLinkage | None) -> Similarity:
    """The pair score for the extractor the policy names (the built-in one by default)."""
    if link is not None and link.extractor is not None:
        from slidegate.risk.onnx import orbit_cosine

        return orbit_cosine(2 * link.extractor.rotations)
    return registration_similarity


def features_for(rgb: NDArray[np.uint8], link: ImageLinkage | None) -> NDArray[np.float32]:
    """A slide's feature vector under the extractor the policy names."""
    if link is not None and link.extractor is not None:
        from slidegate.risk.onnx import onnx_features

        return onnx_features(rgb, link.extractor)
    return slide_descriptor(rgb)
