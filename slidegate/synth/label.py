"""Label and macro pictures with canary text burnt into the pixels (PIL only).

The label looks like a printed slide label: a few lines of text (patient name, slide label, ...)
and a barcode-like stripe pattern derived from the first slide-label line. The macro is a photo
of the whole glass slide: the label on the left, a downscaled view of the tissue on the right.
Rendering is deterministic, so a test can re-render a label and compare it with the stored,
losslessly compressed label page pixel for pixel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from slidegate.synth.texture import RGB, resize

LABEL_SIZE = (463, 387)  # (height, width), as in real Aperio files
MACRO_SIZE = (431, 1280)
_PAPER = (236, 236, 228)
_INK = (20, 20, 24)
_GLASS = (214, 218, 222)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def render_label(lines: Sequence[str], size: tuple[int, int] = LABEL_SIZE) -> RGB:
    """Return a label image (`size` = (height, width)) showing `lines` and a barcode stripe."""
    h, w = size
    img = Image.new("RGB", (w, h), _PAPER)
    draw = ImageDraw.Draw(img)
    font_px = max(8, min(22, int(w / 14)))
    font = _font(font_px)
    y = h // 12
    for line in lines:
        draw.text((w // 20, y), line, fill=_INK, font=font)
        y += int(font_px * 1.6)
    key = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
    bits = "".join(f"{b:08b}" for b in hashlib.sha256(key.encode()).digest())
    top, bottom = y + h // 16, min(h - h // 12, y + h // 16 + h // 4)
    x, unit = w // 20, max(1, w // 160)
    for i, bit in enumerate(bits):
        if x + 2 * unit >= w - w // 20:
            break
        width = unit * (2 if bit == "1" else 1)
        if i % 2 == 0:
            draw.rectangle((x, top, x + width - 1, bottom), fill=_INK)
        x += width
    return np.asarray(img, dtype=np.uint8)


def render_macro(tissue: RGB, label: RGB, size: tuple[int, int] = MACRO_SIZE) -> RGB:
    """Whole-slide photo: label area on the left, downscaled tissue on glass on the right."""
    h, w = size
    canvas = np.empty((h, w, 3), np.uint8)
    canvas[:] = _GLASS
    lab_w = max(1, round(label.shape[1] * h / label.shape[0]))
    canvas[:, :lab_w] = resize(label, (h, lab_w))
    free_h, free_w = h - 2 * (h // 16), w - lab_w - 2 * (h // 16)
    scale = min(free_h / tissue.shape[0], free_w / tissue.shape[1])
    th, tw = max(1, int(tissue.shape[0] * scale)), max(1, int(tissue.shape[1] * scale))
    y0 = (h - th) // 2
    x0 = lab_w + (w - lab_w - tw) // 2
    canvas[y0 : y0 + th, x0 : x0 + tw] = resize(tissue, (th, tw))
    return canvas
