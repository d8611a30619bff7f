"""Shared parts of the synthetic vendor fixtures: canary planting, pictures, the result record.

Every writer plants a unique canary (`CANARY<seed><S><nnnn><CODE>`, see synth.canary) in each
field phi-locations.md names for its format, renders canary text into its label and macro
pixels, and returns a `VendorSlide` saying what was planted where. Pixels are small (a few
hundred pixels a side) so fixtures build in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slidegate.synth.canary import token
from slidegate.synth.label import render_label, render_macro
from slidegate.synth.texture import RGB, downsample, tissue_image


@dataclass(frozen=True)
class VendorSlide:
    """One synthetic vendor file and what was planted in it."""

    path: Path
    format: str  # the slidegate format name it must be detected as
    canaries: dict[str, str]  # planted field (name as slidegate reports it) -> value
    label_lines: tuple[str, ...]  # text rendered into the label / macro pixels
    associated: tuple[tuple[int, int], ...]  # (height, width) of every non-pyramid image
    level_shapes: tuple[tuple[int, int], ...]  # (height, width) of the pyramid, largest first
    extra: dict[str, str] = field(default_factory=dict)  # planted non-canary values (dates)


class Planter:
    """Hands out canaries for one file and remembers which field got which."""

    def __init__(self, seed: int, code: str) -> None:
        self.seed, self.code = seed, code
        self.planted: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        value = token(self.seed, "S", len(self.planted) + 1, self.code)
        self.planted[name] = value
        return value

    def date(self, name: str, value: str) -> str:
        """Record a planted date (not a CANARY token: dates must parse to be coarsened)."""
        self.planted[name] = value
        return value


def pyramid(seed: int, size: tuple[int, int], levels: int) -> list[RGB]:
    """Tissue-like base image and its 2x-reduced copies."""
    base = tissue_image(seed, size)
    out = [base]
    for _ in range(levels - 1):
        out.append(downsample(out[-1], 2))
    return out


def label_and_macro(
    lines: tuple[str, ...], tissue: RGB, label: tuple[int, int], macro: tuple[int, int]
) -> tuple[RGB, RGB]:
    """A label showing `lines` and a macro photo with that label on it."""
    lab = render_label(list(lines), size=label)
    return lab, render_macro(tissue, lab, size=macro)


def gray(img: RGB) -> np.ndarray:
    return np.asarray(img.mean(axis=2), dtype=np.uint8)
