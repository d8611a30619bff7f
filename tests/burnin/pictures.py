"""Test pictures for the burn-in check, made here (numpy, PIL, zxing-cpp, tifffile), not with
slidegate's synth: tissue-like background, a real label pasted in, pen text, a barcode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, ImageFont

#: the case number written on the synthetic slide in pen; a needle of that slide's cohort row
CASE_NUMBER = "S26-04417"
PEN = (40, 60, 150)  # blue-black marker


def tissue(h: int, w: int, seed: int = 0) -> NDArray[np.uint8]:
    """Pink H&E-like blobs and speckle on white glass."""
    rng = np.random.default_rng(seed)
    small = rng.random((max(2, h // 32), max(2, w // 32)))
    mask = np.asarray(
        Image.fromarray((small * 255).astype(np.uint8))
        .resize((w, h), Image.Resampling.BICUBIC)
        .filter(ImageFilter.GaussianBlur(6))
    )
    inside = mask > 140
    img = np.full((h, w, 3), 242, np.uint8)
    noise = rng.normal(0, 18, (h, w, 1))
    pink = np.array([214, 120, 170], np.float64) + noise
    purple = np.array([120, 70, 150], np.float64) + noise
    nuclei = rng.random((h, w)) > 0.985
    img[inside] = np.clip(pink[inside], 0, 255).astype(np.uint8)
    img[inside & nuclei] = np.clip(purple[inside & nuclei], 0, 255).astype(np.uint8)
    return img


def real_label(real_slides: Path) -> NDArray[np.uint8]:
    """The NDPI macro's paper label (printed case-like numbers), cut from the real file."""
    with tifffile.TiffFile(real_slides / "hamamatsu-ndpi" / "test3-DAPI-2-387.ndpi") as tif:
        macro = next(s for s in tif.series if s.name == "Macro").asarray()
    return np.ascontiguousarray(macro[:, :400])  # the label end of the glass


def cmu1_label(real_slides: Path) -> NDArray[np.uint8]:
    with tifffile.TiffFile(real_slides / "aperio-svs" / "CMU-1-Small-Region.svs") as tif:
        return np.asarray(next(s for s in tif.series if s.name == "Label").asarray())


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    ):
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)  # Pillow's own scalable font


def pen_text(img: NDArray[np.uint8], text: str, at: tuple[int, int], size: int) -> None:
    """Write `text` in pen colour onto `img` (in place), slightly blurred like ink on glass."""
    h, w = img.shape[:2]
    layer = Image.new("L", (w, h), 0)
    ImageDraw.Draw(layer).text(at, text, fill=255, font=font(size))
    alpha = np.asarray(layer.filter(ImageFilter.GaussianBlur(1)), np.float64)[..., None] / 255
    out = img * (1 - alpha) + np.array(PEN, np.float64) * alpha
    img[...] = np.clip(out, 0, 255).astype(np.uint8)


def barcode(text: str, kind: str = "QRCode", scale: int = 6) -> NDArray[np.uint8]:
    import zxingcpp

    code = zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, kind))
    grey = np.asarray(code.to_image(scale=scale, add_quiet_zones=True))
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))


def paste(img: NDArray[np.uint8], part: NDArray[np.uint8], y: int, x: int) -> None:
    img[y : y + part.shape[0], x : x + part.shape[1]] = part[..., :3]


def write_pyramid(path: Path, base: NDArray[np.uint8], levels: int = 3) -> Path:
    """A generic tiled pyramidal TIFF (JPEG tiles, 2x steps), as a scanner's generic export."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tifffile.TiffWriter(path) as tif:
        img = base
        for i in range(levels):
            tif.write(
                img,
                tile=(256, 256),
                compression="jpeg",
                compressionargs={"level": 92},
                photometric="rgb",
                subfiletype=1 if i else 0,
            )
            h, w = img.shape[:2]
            img = np.asarray(Image.fromarray(img).resize((w // 2, h // 2), Image.Resampling.BOX))
    return path
