"""One measured benchmark job, run in its own process by bench/run.py:
`python -m bench.tasks JOB SRC OUT THREADS [OPTIONS-JSON]`. Prints one JSON line with the
job's own work time (imports and process start excluded) and what it produced.

Thread counts are set by the parent through the environment (VIPS_CONCURRENCY,
ZARR_THREADING__MAX_WORKERS, BLOSC_NTHREADS) and passed to slidegate/dask explicitly.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def decode(src: Path, out: Path, threads: int, opts: dict[str, Any]) -> dict[str, Any]:
    """T0: tifffile decoding every level-0 tile, one thread, nothing kept."""
    import tifffile

    t0 = time.perf_counter()
    n = 0
    with tifffile.TiffFile(src) as tif:
        page = tif.pages[0]
        for seg, _, _ in page.segments(maxworkers=1):
            n += 0 if seg is None else 1
    return {"work_s": time.perf_counter() - t0, "tiles": n}


def slidegate(src: Path, out: Path, threads: int, opts: dict[str, Any]) -> dict[str, Any]:
    """T1/T2: write_ome_zarr (inventory + plan done before the clock starts)."""
    from slidegate.convert import ConvertOptions, write_ome_zarr
    from slidegate.deid import load_deid_policy, plan_deid
    from slidegate.formats import read_facts

    facts = read_facts(src, src.name)
    policy = load_deid_policy(Path(opts.pop("policies")) / f"deid/{facts.format}.yaml")
    plan = plan_deid(facts, policy, "s-0000000000000000")
    t0 = time.perf_counter()
    size = write_ome_zarr(src, plan, out, ConvertOptions(threads=threads, **opts))
    return {"work_s": time.perf_counter() - t0, "bytes": size}


def copy(src: Path, out: Path, threads: int, opts: dict[str, Any]) -> dict[str, Any]:
    """T3: the de-identified copy in the original format (SVS: tiles byte for byte)."""
    from slidegate.deid import load_deid_policy, plan_deid
    from slidegate.formats import read_facts
    from slidegate.formats.tiff_copy import write_tiff_copy

    facts = read_facts(src, src.name)
    policy = load_deid_policy(Path(opts.pop("policies")) / f"deid/{facts.format}.yaml")
    plan = plan_deid(facts, policy, "s-0000000000000000")
    t0 = time.perf_counter()
    size = write_tiff_copy(src, plan, out)
    return {"work_s": time.perf_counter() - t0, "bytes": size}


def vips(src: Path, out: Path, threads: int, opts: dict[str, Any]) -> dict[str, Any]:
    """T2: libvips, level 0 of the TIFF -> full 2x pyramid, JPEG Q90 (tiffsave or dzsave).
    libvips' default at Q >= 90 is no chroma subsampling (4:4:4); `subsample: on` asks for
    YCbCr 4:2:0, slidegate's own colour handling (equal work)."""
    import pyvips

    t0 = time.perf_counter()
    img = pyvips.Image.tiffload(str(src), page=0, access="sequential")
    if opts["kind"] == "tiffsave":
        extra = {"subsample_mode": opts["subsample"]} if "subsample" in opts else {}
        img.tiffsave(str(out), tile=True, pyramid=True, compression="jpeg", Q=90,
                     tile_width=512, tile_height=512, bigtiff=True, **extra)  # fmt: skip
        return {"work_s": time.perf_counter() - t0, "bytes": out.stat().st_size}
    img.dzsave(str(out), tile_size=512, overlap=0, suffix=".jpg[Q=90]")
    return {"work_s": time.perf_counter() - t0}


def naive(src: Path, out: Path, threads: int, opts: dict[str, Any]) -> dict[str, Any]:
    """T2 reference: tifffile -> dask -> zarr copy of level 0 (blosc zstd, no pyramid)."""
    import dask
    import dask.array as da
    import tifffile
    import zarr
    from zarr.codecs import BloscCodec

    t0 = time.perf_counter()
    store = tifffile.imread(src, aszarr=True, level=0)
    src_arr = zarr.open_array(store, mode="r")
    arr = da.from_array(src_arr, chunks=(4096, 4096, 3))
    dst = zarr.create_array(
        str(out), shape=src_arr.shape, dtype=src_arr.dtype, chunks=(512, 512, 3),
        shards=(4096, 4096, 3), compressors=BloscCodec(cname="zstd", clevel=5),
    )  # fmt: skip
    with dask.config.set(scheduler="threads", num_workers=threads):
        da.store(arr, dst, lock=False)  # type: ignore[arg-type]
    store.close()
    return {"work_s": time.perf_counter() - t0}


JOBS = {"decode": decode, "slidegate": slidegate, "copy": copy, "vips": vips, "naive": naive}


def main(argv: list[str]) -> None:
    job, src, out, threads = argv[0], Path(argv[1]), Path(argv[2]), int(argv[3])
    opts = json.loads(argv[4]) if len(argv) > 4 else {}
    result = JOBS[job](src, out, threads, opts)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
