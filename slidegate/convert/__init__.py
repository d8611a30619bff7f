"""OME-Zarr (NGFF 0.5, Zarr v3) writer for de-identified slides."""

from slidegate.convert.codecs import register
from slidegate.convert.ome_zarr import ConvertOptions, write_ome_zarr

# pass-through output names imagecodecs codecs: make every process that imports the converter
# (the audit re-open included) able to read it
register()

__all__ = ["ConvertOptions", "register", "write_ome_zarr"]
