"""Run one damaged slide through inventory (detect + facts), the region reader and (on request)
the conversion, the way a release does, and say how it ended."""

from __future__ import annotations

import hashlib
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

from slidegate.errors import SlidegateError

#: the shared real files (SOURCES.md); the wsi2dcm pyramid is one slide of 12 files
SLIDES = (
    "aperio-svs/CMU-1-Small-Region.svs",
    "hamamatsu-ndpi/test3-DAPI-2-387.ndpi",
    "perkinelmer-qptiff/small_vectra.qptiff",
    "ome-tiff/OS-2-ndpi.ome.tif",
    "generic-tiff/boxes.tiff",
    "dicom-wsi/highdicom_sm_image.dcm",
    "dicom-wsi/ezwsi_label_test_wsi.dcm",
    "dicom-wsi/wsi2dcm_raw.dcm",
    "zeiss-czi/mosaic_test.czi",
    "dicom-wsi/cmu-1-small-region-wsi2dcm",
)
PSEUDONYM = "s-0123456789abcdef"


@dataclass(frozen=True)
class Outcome:
    stage: str  # where it ended: "facts", "read", "convert" or "done"
    error: str | None  # the class of a project error, None when the slide read cleanly
    foreign: str | None  # a non-project exception: its class and innermost frames


def tree_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def exercise(path: Path, out: Path | None) -> Outcome:
    """detect -> read_facts -> read a corner of every level -> (if `out`) plan + convert."""
    from slidegate.convert.ome_zarr import ConvertOptions, write_ome_zarr
    from slidegate.deid.plan import plan_deid
    from slidegate.formats import detect_format, open_reader, read_facts
    from slidegate.profile import load_policies
    from slidegate.settings import DEFAULT_POLICIES_DIR

    stage = "facts"
    try:
        detect_format(path)
        facts = read_facts(path, "fuzz-slide")
        stage = "read"
        with open_reader(path) as reader:
            for level in facts.levels:
                reader.read(level, 0, 0, min(level.height, 128), min(level.width, 128))
        if out is not None:
            stage = "convert"
            policies = load_policies(DEFAULT_POLICIES_DIR, "open-access")
            plan = plan_deid(facts, policies.deid_for(facts.format), PSEUDONYM)
            shutil.rmtree(out, ignore_errors=True)
            write_ome_zarr(path, plan, out, ConvertOptions(threads=1))
        return Outcome("done", None, None)
    except SlidegateError as exc:
        return Outcome(stage, type(exc).__name__, None)
    except Exception as exc:  # what the suite exists to find
        frames = "".join(traceback.format_exception(exc)[-3:])[-400:]
        return Outcome(stage, None, f"{type(exc).__module__}.{type(exc).__name__}: {frames}")
    finally:
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)


def place(source: Path, kind_data: bytes, index: int, tmp: Path) -> Path:
    """Write one variant read-only: a file variant as a file; for the folder slide, the damaged
    bytes replace one of its files (in turn) and the rest are copied."""
    if source.is_file():
        path = tmp / f"v{index}{source.suffix}"
        path.write_bytes(kind_data)
        path.chmod(0o444)
        return path
    folder = tmp / f"v{index}"
    folder.mkdir()
    files = sorted(source.iterdir())
    victim = files[index % len(files)].name
    for file in files:
        dest = folder / file.name
        if file.name == victim:
            dest.write_bytes(kind_data)
        else:
            shutil.copyfile(file, dest)
        dest.chmod(0o444)
    return folder


def victim_bytes(source: Path, index: int) -> bytes:
    """The bytes a variant damages: the file, or the folder's file `index` picks."""
    if source.is_file():
        return source.read_bytes()
    files = sorted(source.iterdir())
    return files[index % len(files)].read_bytes()


def remove(path: Path) -> None:
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
