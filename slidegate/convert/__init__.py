"""OME-Zarr (NGFF 0.5, Zarr v3) writer for de-identified slides."""

from slidegate.convert.ome_zarr import ConvertOptions, write_ome_zarr

__all__ = ["ConvertOptions", "write_ome_zarr"]
