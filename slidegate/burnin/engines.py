"""The two offline engines of the burn-in check: RapidOCR (PP-OCRv4 ONNX models shipped in the
`rapidocr-onnxruntime` wheel, run by onnxruntime) for text and zxing-cpp for 1-D/2-D barcodes.

Both run in-process with nothing fetched at run time. What they read is PHI: a `TextHit`'s
`text` and a barcode's payload stay inside `slidegate.burnin` (scored into shapes and needle
hits by `slidegate.burnin.shapes`, then dropped); no text is ever logged, raised or returned
to a caller outside the package. Engines are built once per process (lazily, under a lock).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: onnxruntime threads per OCR call: a worker converts one slide per core, the check must not
#: take the whole machine
OCR_THREADS = 2
#: the text detector sees a small image scaled up so its shorter side is this long (RapidOCR's
#: default; 640 or no upscaling missed CMU-1's handwritten label, see README "Burned-in text")
DET_SIDE = 736
#: ... and a large one scaled down so its longer side is at most this long: detection finds
#: where text lines are, recognition then reads each line from the full-resolution crop. Half
#: the detector's cost of a 1536 x 1024 level
DET_MAX = 1024

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the image the engine was given


@dataclass(frozen=True)
class TextHit:
    """One OCR line. `text` is PHI: never let it leave slidegate.burnin."""

    box: Box
    text: str
    confidence: float

    def __repr__(self) -> str:  # a stray log of the object shows no text
        return f"TextHit(box={self.box}, chars={len(self.text)}, confidence={self.confidence:.2f})"


@dataclass(frozen=True)
class BarcodeHit:
    """One decoded barcode: its symbology and where it is; the payload is not kept."""

    box: Box
    symbology: str
    payload_chars: int


_lock = threading.Lock()
_ocr: Any = None


def _engine() -> Any:
    global _ocr
    with _lock:
        if _ocr is None:
            from rapidocr_onnxruntime import RapidOCR

            _ocr = RapidOCR(
                det_limit_side_len=DET_SIDE,
                intra_op_num_threads=OCR_THREADS,
                inter_op_num_threads=1,
            )
            # RapidOCR's own logger prints engine set-up lines at DEBUG to stderr; keep it quiet
            logging.getLogger("RapidOCR").setLevel(logging.WARNING)
            det = _ocr.text_det
            det.get_preprocess = lambda _max_wh: det.preprocess_op  # chosen per image below
        return _ocr


def warm_engines() -> None:
    """Load the OCR models now (once per process), not inside the first slide's check."""
    _engine()


def _det_preprocess(h: int, w: int) -> Any:
    """The detector's resize for an h x w image (see DET_SIDE, DET_MAX)."""
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    det = _ocr.text_det
    if min(h, w) < DET_SIDE:
        return DetPreProcess(DET_SIDE, "min", det.mean, det.std)
    return DetPreProcess(DET_MAX, "max", det.mean, det.std)


def _box(points: Any) -> Box:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x0, y0 = np.floor(pts.min(axis=0))
    x1, y1 = np.ceil(pts.max(axis=0))
    return int(x0), int(y0), int(x1), int(y1)


def read_text(rgb: NDArray[np.uint8]) -> list[TextHit]:
    """Text lines in an (H, W, 3) uint8 RGB image."""
    ocr = _engine()
    bgr = np.ascontiguousarray(rgb[..., ::-1])  # RapidOCR takes OpenCV's BGR order
    with _lock:  # one inference at a time per process: the sessions share their threads
        ocr.text_det.preprocess_op = _det_preprocess(*bgr.shape[:2])
        result, _ = ocr(bgr)
    hits = []
    for points, text, score in result or []:
        hits.append(TextHit(_box(points), str(text), float(score)))
    return hits


def read_barcodes(rgb: NDArray[np.uint8]) -> list[BarcodeHit]:
    """Decodable 1-D/2-D barcodes (QR, Data Matrix, PDF417, Code 128, ...) in an RGB image."""
    import zxingcpp

    grey = np.ascontiguousarray(
        (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.uint8)
    )
    hits = []
    for code in zxingcpp.read_barcodes(grey):
        p = code.position
        pts = [(q.x, q.y) for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)]
        hits.append(BarcodeHit(_box(pts), code.format.name, len(code.text)))
    return hits
