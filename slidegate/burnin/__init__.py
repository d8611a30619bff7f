"""Burned-in identity in the published pixels: text (OCR) and barcodes on a low level.

Label areas scanned into the base image, pen writing, stickers and barcodes on the glass sit in
the pyramid itself, which the metadata rules never see. `check_output` looks at one low level
of the staged OME-Zarr with two offline engines (slidegate.burnin.engines) and returns
findings that say where and what shape, never what text (slidegate.burnin.shapes); the
profile's `burned_in` policy decides what happens to the slide (slidegate.burnin.policy).
"""

from slidegate.burnin.check import check_image, check_output, read_check_level
from slidegate.burnin.shapes import NeedleIndex

__all__ = ["NeedleIndex", "check_image", "check_output", "read_check_level"]
