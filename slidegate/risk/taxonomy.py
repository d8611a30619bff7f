"""Taxonomy inventory per slide (Holub et al. 2023's view of a WSI package): which identifying
parts a slide had and what was done to each. A slide with an identifying part left is never
approved.

Built from the per-slide counts of the de-identification summary (`SlideReport.detail`, e.g.
`dropped.date`, `coarsened.date`, `kept.technical`, `images_dropped.label`, `associated_images`)
and from the metadata policy (associated data columns). Counts and class names only: no values.
"""

from __future__ import annotations

from collections.abc import Mapping

from slidegate.models import Frozen
from slidegate.validate.policy import MetadataPolicy

#: metadata classes that may stay in an output (kept as is)
SAFE_KEPT = frozenset({"technical"})
#: classes that may stay only coarsened (e.g. the scan date as a year)
SAFE_COARSENED = frozenset({"date"})
IMAGE_KINDS = ("label", "macro", "thumbnail", "other")


class SlideTaxonomy(Frozen):
    slide: str  # pseudonym
    #: associated image kind -> "dropped (n)"
    images: dict[str, str]
    #: metadata class -> {"dropped": n, "coarsened": n, "kept": n}
    metadata: dict[str, dict[str, int]]
    file_name: str
    #: identifying parts still present (empty = clean); names of parts, never values
    left: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.left


def slide_taxonomy(slide: str, detail: Mapping[str, int]) -> SlideTaxonomy:
    """Inventory of one de-identified slide from its summary counts."""
    images: dict[str, str] = {}
    dropped_images = 0
    for kind in IMAGE_KINDS:
        n = int(detail.get(f"images_dropped.{kind}", 0))
        dropped_images += n
        if n:
            images[kind] = f"dropped ({n})"
    metadata: dict[str, dict[str, int]] = {}
    for key, n in detail.items():
        action, _, cls = key.partition(".")
        if action in ("dropped", "coarsened", "kept") and cls:
            metadata.setdefault(cls, {"dropped": 0, "coarsened": 0, "kept": 0})[action] += int(n)
    left = []
    found = int(detail.get("associated_images", dropped_images))
    if found > dropped_images:
        left.append(f"{found - dropped_images} associated image(s) not dropped")
    for cls, counts in sorted(metadata.items()):
        if counts["kept"] and cls not in SAFE_KEPT:
            left.append(f"{counts['kept']} metadata field(s) of class '{cls}' kept")
        if counts["coarsened"] and cls not in SAFE_COARSENED and cls not in SAFE_KEPT:
            left.append(f"{counts['coarsened']} metadata field(s) of class '{cls}' only coarsened")
    return SlideTaxonomy(
        slide=slide,
        images=images,
        metadata=metadata,
        file_name="replaced by the slide pseudonym",
        left=tuple(left),
    )


def table_taxonomy(policy: MetadataPolicy, source_columns: list[str]) -> dict[str, str]:
    """What happens to each associated data column: pseudonymised, generalised, kept, dropped."""
    out = {}
    rules = policy.columns
    for col in source_columns:
        rule = rules.get(col)
        if rule is None or rule.action == "drop":
            out[col] = "dropped"
        elif rule.action == "generalize":
            out[col] = f"generalised ({rule.hierarchy} to {rule.level})"
        elif rule.action == "pseudonymize":
            out[col] = "replaced by a keyed pseudonym"
        else:
            out[col] = "kept (checked by the metadata policy's expectations)"
    return out
