"""A steward's feature extractor: an ONNX model file run on the CPU (onnxruntime).

The risk policy names the file and its sha256 (`image_linkage.extractor`). Each slide's worker
registers the tissue first (centred on the mask's centroid, the window RMAX RMS radii wide, as
slidegate.risk.registration does), then embeds it in `rotations` turns, each also mirrored: one
batch of (2 x rotations, 3, side, side) float32 RGB in [0, 1] (glass white). The signature is
those embeddings (a few kilobytes); two slides are compared by the plain cosine of one's first
orientation with the best of the other's, so the score does not depend on placement.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from slidegate.errors import PolicyError
from slidegate.risk.registration import RMAX, bilinear, pose, tissue_mask

if TYPE_CHECKING:
    from slidegate.risk.policy import OnnxExtractor

F32 = NDArray[np.float32]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def _session(path: str, sha256: str) -> Any:
    """One CPU inference session per model file and worker process, checked against its
    sha256 when first opened."""
    import onnxruntime

    if file_sha256(Path(path)) != sha256:
        raise PolicyError(
            f"ONNX feature extractor {Path(path).name}: sha256 does not match the risk "
            "policy's; put the file the policy names in place or update its sha256"
        )
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def registered_views(rgb: NDArray[np.uint8], side: int, rotations: int) -> F32:
    """(2 x rotations, 3, side, side) float32 in [0, 1]: the tissue centred, scaled to its RMS
    radius, turned by 360/rotations degrees at a time, then the same mirrored."""
    cy, cx, rms = pose(tissue_mask(rgb))
    u = (np.arange(side, dtype=np.float32) + 0.5) / side * 2 - 1  # [-1, 1]
    vv, uu = np.meshgrid(u, u, indexing="ij")
    half = RMAX * rms
    ink = [(255.0 - rgb[..., c].astype(np.float32)) / 255.0 for c in range(3)]  # glass -> 0
    views = []
    for mirror in (1.0, -1.0):
        for j in range(rotations):
            t = 2 * np.pi * j / rotations
            c, s = np.cos(t), np.sin(t)
            ys = cy + half * (c * vv - s * uu * mirror)
            xs = cx + half * (s * vv + c * uu * mirror)
            views.append(np.stack([1.0 - bilinear(ch, ys, xs) for ch in ink]))
    return np.asarray(np.stack(views), np.float32)


def onnx_features(rgb: NDArray[np.uint8], extractor: OnnxExtractor) -> F32:
    """The model's embeddings of every orientation of the registered tissue, flat float32."""
    session = _session(extractor.model, extractor.sha256)
    views = registered_views(rgb, extractor.input_size, extractor.rotations)
    name = session.get_inputs()[0].name
    out = np.asarray(session.run(None, {name: views})[0], np.float32)
    return out.reshape(len(views), -1).ravel()


def orbit_cosine(orientations: int, block: int = 64) -> Callable[[NDArray[np.floating]], F32]:
    """The pair score for embeddings of `orientations` views per slide: the cosine of one
    slide's first view with the best of the other's views, symmetrised."""

    def similarity(features: NDArray[np.floating]) -> F32:
        n = features.shape[0]
        if n == 0:
            return np.zeros((0, 0), np.float32)
        if features.shape[1] % orientations:
            raise ValueError(
                f"ONNX embeddings: {features.shape[1]} values is not {orientations} views"
            )
        e = np.asarray(features, np.float32).reshape(n, orientations, -1)
        e = e / np.maximum(np.linalg.norm(e, axis=2, keepdims=True), 1e-12)
        first = np.ascontiguousarray(e[:, 0].T)  # (d, n)
        out = np.full((n, n), -1.0, np.float32)
        for start in range(0, n, block):
            rows = e[start : start + block]  # (b, views, d)
            out[start : start + block] = (rows @ first).max(axis=1)
        return np.asarray(np.maximum(out, out.T), np.float32)

    return similarity
