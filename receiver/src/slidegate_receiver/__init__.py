"""Zarr v3 decoders for slidegate releases, registered through zarr's `zarr.codecs` entry
points (see pyproject.toml): installing this distribution is all a receiver does."""

from slidegate_receiver.codecs import ImagecodecsJpeg, Jpeg, Jpeg2k

__all__ = ["ImagecodecsJpeg", "Jpeg", "Jpeg2k"]
__version__ = "0.1.0"
