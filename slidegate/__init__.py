"""slidegate: privacy-gated batch release of whole-slide image cohorts.

The core library. It never imports prefect, prefect_dask, distributed, flows or tasks.
"""

__version__ = "0.1.0"
