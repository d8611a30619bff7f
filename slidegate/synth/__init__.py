"""Synthetic whole-slide images and cohorts with planted canary PHI (for the demo and tests).

Main entry point: `generate_cohort(out, slides=..., patients=..., seed=...) -> SynthCohort`.
The building blocks are public too: `tissue_image` (H&E-like texture), `render_label` /
`render_macro` (canary text in pixels), `write_svs` (real Aperio page layout) and
`write_generic_tiff` (SubIFD pyramid + stripped label page).
"""

from slidegate.synth.canary import ScanTime, guid, number, token
from slidegate.synth.cohort import COLUMNS, SynthCohort, generate_cohort, label_lines
from slidegate.synth.label import render_label, render_macro
from slidegate.synth.plan import CohortPlan, plan_cohort
from slidegate.synth.svs import SvsMeta, level_factors, write_svs
from slidegate.synth.texture import downsample, tissue_image
from slidegate.synth.tiff import TiffMeta, write_generic_tiff

__all__ = [
    "COLUMNS",
    "CohortPlan",
    "ScanTime",
    "SvsMeta",
    "SynthCohort",
    "TiffMeta",
    "downsample",
    "generate_cohort",
    "guid",
    "label_lines",
    "level_factors",
    "number",
    "plan_cohort",
    "render_label",
    "render_macro",
    "tissue_image",
    "token",
    "write_generic_tiff",
    "write_svs",
]
