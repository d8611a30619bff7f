"""Philips TIFF (IntelliSite, UFS export): tiled pyramid, XML DataObject on page 0.

Layout (tifffile `series_philips`): the tiled pages form the pyramid (tifffile also corrects the
padded ImageWidth/ImageLength of reduced levels from the XML pixel spacing; reading
`tif.series` applies that fix); pages whose description starts with `Label` / `Macro` are the
label and macro; any other untiled page is associated. Older files carry label and macro only
as base64 JPEGs inside the XML (`PIM_DP_IMAGE_TYPE` LABELIMAGE / MACROIMAGE with
`PIM_DP_IMAGE_DATA`): reported as embedded associated images and never published (no XML
value is copied unless the policy keeps it).

Fields: every `<Attribute Name="...">` text of the XML as `philips.<Name>` (nested sequences
included; `Group`/`Element`/`PMSVR` are encoding details), plus the TIFF tags of every page.
MPP: the first `DICOM_PIXEL_SPACING` (millimetres, "row col").
"""

from __future__ import annotations

from xml.etree import ElementTree

import tifffile

from slidegate.errors import UnsupportedSlideError
from slidegate.formats.tiff import Layout, PageRef, parse_xml, resolution_mpp, tag_fields
from slidegate.models import AssociatedImage, AssociatedKind, MetadataField

FORMAT = "philips"
EMBEDDED: dict[str, AssociatedKind] = {"LABELIMAGE": "label", "MACROIMAGE": "macro"}
#: attributes holding a base64 picture: inventoried by their first characters only (enough for
#: the leak audit to find any copy; the picture itself is an associated image, never published)
IMAGE_DATA = frozenset({"PIM_DP_IMAGE_DATA"})
IMAGE_PREFIX = 256


def is_philips(tif: tifffile.TiffFile) -> bool:
    return bool(getattr(tif, "is_philips", False))


def _attr_value(obj: ElementTree.Element, name: str) -> str | None:
    for el in obj.findall("Attribute"):
        if el.attrib.get("Name") == name:
            return (el.text or "").strip()
    return None


def embedded_images(root: ElementTree.Element) -> list[AssociatedImage]:
    out: list[AssociatedImage] = []
    for obj in root.iter("DataObject"):
        kind = EMBEDDED.get((_attr_value(obj, "PIM_DP_IMAGE_TYPE") or "").upper())
        if kind and _attr_value(obj, "PIM_DP_IMAGE_DATA"):
            out.append(
                AssociatedImage(kind=kind, page=0, height=0, width=0, compression="XML base64")
            )
    return out


def layout(tif: tifffile.TiffFile, path: object) -> Layout:
    try:
        series = tif.series  # applies tifffile's padding fix to the level pages
    except Exception:
        series = []
    if not series or series[0].name != "Baseline":
        raise UnsupportedSlideError(
            f"slide {path}: Philips TIFF whose XML pixel spacing does not match its tiled "
            "pages; re-export the slide",
            reason="unsupported: Philips layout",
        )
    levels = [
        PageRef(lv.keyframe, int(lv.keyframe.index), f"page {lv.keyframe.index}")
        for lv in series[0].levels
    ]
    used = {int(r.page.index) for r in levels}
    out = Layout(levels=levels)
    for i, page in enumerate(tif.pages):
        if not isinstance(page, tifffile.TiffPage) or i in used:
            continue
        desc = (page.description or "").lower()
        kind: AssociatedKind = (
            "label"
            if desc.startswith("label")
            else "macro"
            if desc.startswith("macro")
            else "other"
        )
        out.associated.append((kind, PageRef(page, i, f"page {i}")))
    root = parse_xml(tif.pages.first.description or "")
    if root is not None:
        out.embedded.extend(embedded_images(root))
    return out


def xml_attributes(root: ElementTree.Element, where: str) -> list[MetadataField]:
    out: list[MetadataField] = []
    for n, el in enumerate(root.iter("Attribute"), start=1):
        name = el.attrib.get("Name", "").strip()
        text = (el.text or "").strip()
        if name in IMAGE_DATA:
            text = text[:IMAGE_PREFIX]  # a picture, not text: its head finds any copy of it
        if name and text:
            out.append(
                MetadataField(name=f"philips.{name}", location=f"{where} Attribute {n}", value=text)
            )
    return out


def fields(tif: tifffile.TiffFile) -> list[MetadataField]:
    out: list[MetadataField] = []
    for i, page in enumerate(tif.pages):
        if not isinstance(page, tifffile.TiffPage):
            continue
        root = parse_xml(page.description or "") if page.description else None
        if root is not None:
            out.extend(xml_attributes(root, f"page {i} tag 270 ImageDescription"))
        ref = PageRef(page, i, f"page {i}")
        out.extend(tag_fields(ref, skip_description=root is not None))
    return out


def mpp(tif: tifffile.TiffFile, layout_: Layout) -> tuple[float | None, float | None]:
    root = parse_xml(tif.pages.first.description or "")
    for el in root.iter("Attribute") if root is not None else ():
        if el.attrib.get("Name") == "DICOM_PIXEL_SPACING" and el.text:
            try:
                row, col = (float(v) for v in el.text.replace('"', " ").split()[:2])
            except ValueError:
                break
            if row > 0 and col > 0:
                return row * 1000.0, col * 1000.0
            break
    return resolution_mpp(layout_.levels[0].page)
