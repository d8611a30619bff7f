"""Generate a synthetic cohort: slides with planted canary PHI, cohort.csv and canaries.json.

Output layout (`out` = OUT):
  OUT/slides/S0001.svs, S0002.svs, ..., S0004.tiff, ...   non-identifying file names
  OUT/cohort.csv      slide, patient, block, specimen, age, sex, diagnosis, site, collection_date
  OUT/canaries.json   {"canaries": [{"slide": "slides/S0001.svs", "field": ..., "value": ...}]}

Everything is a pure function of the arguments (no clock, no global random state): the same
seed gives byte-identical files. See `slidegate.synth.plan` for the patient/block/specimen and
risk structure, `canary` for the shape of the planted values.

Canary fields: SVS `aperio.ScanScope ID`, `aperio.Filename`, `aperio.Date`, `aperio.Time`,
`aperio.User`, `aperio.ImageID` (ImageDescription of page 0, thumbnail and every reduced level)
and `tiff.DateTime`, `tiff.Software`, `tiff.Make`, `tiff.Model`, `tiff.Artist` (page 0 and the
reduced levels); generic TIFF `tiff.ImageDescription` (a token inside free text),
`tiff.DateTime`, `tiff.Software`, `tiff.Artist`, `tiff.HostComputer`, `tiff.DocumentName`;
`label.text` (patient name and slide label, rendered into label and macro pixels only, never in
metadata bytes); table `cohort.patient`, `cohort.block`, `cohort.specimen`,
`cohort.collection_date`. Corrupt slides (SVS truncated to 40 %) list only the metadata canaries
that survive the truncation, plus their table canaries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from slidegate.synth.canary import ScanTime, UniqueScanTimes, guid, number, offset, token
from slidegate.synth.label import render_label, render_macro
from slidegate.synth.plan import CohortPlan, SlidePlan, plan_cohort
from slidegate.synth.svs import SvsMeta, write_svs
from slidegate.synth.texture import tissue_image
from slidegate.synth.tiff import TiffMeta, write_generic_tiff

CORRUPT_FRACTION = 0.4
COLUMNS = (
    "slide",
    "patient",
    "block",
    "specimen",
    "age",
    "sex",
    "diagnosis",
    "site",
    "collection_date",
)
SVS_MPP = 0.499
TIFF_MPP = 0.25


@dataclass(frozen=True)
class SynthCohort:
    root: Path  # OUT
    slides_dir: Path  # OUT/slides
    cohort_csv: Path  # OUT/cohort.csv
    canaries_json: Path  # OUT/canaries.json
    n_slides: int  # readable slides (the `slides` argument)
    n_patients: int
    n_corrupt: int = 0  # extra truncated SVS files; cohort.csv has n_slides + n_corrupt rows


Canary = dict[str, str]


def label_lines(plan: CohortPlan, slide: SlidePlan) -> list[str]:
    """The text printed on a slide's label (the last line is not identifying)."""
    patient = plan.patients[slide.patient - 1]
    return [patient.name, token(plan.seed, "S", slide.number, "LABL"), "H&E"]


def _svs_meta(seed: int, n: int, scan: ScanTime) -> SvsMeta:
    return SvsMeta(
        filename=token(seed, "S", n, "FILE"),
        scanscope_id=token(seed, "S", n, "SCAN"),
        user=guid(seed, "S", n, "USER"),
        image_id=number(seed, "S", n, "IMID"),
        scan=scan,
        software=token(seed, "S", n, "SOFT"),
        make=token(seed, "S", n, "MAKE"),
        model=token(seed, "S", n, "MODL"),
        artist=token(seed, "S", n, "ARTS"),
        mpp=SVS_MPP,
    )


def _svs_canaries(m: SvsMeta) -> list[tuple[str, str]]:
    return [
        ("aperio.ScanScope ID", m.scanscope_id),
        ("aperio.Filename", m.filename),
        ("aperio.Date", m.scan.aperio_date),
        ("aperio.Time", m.scan.aperio_time),
        ("aperio.User", m.user),
        ("aperio.ImageID", m.image_id),
        ("tiff.DateTime", m.scan.tiff_datetime),
        ("tiff.Software", m.software),
        ("tiff.Make", m.make),
        ("tiff.Model", m.model),
        ("tiff.Artist", m.artist),
    ]


def _tiff_meta(seed: int, n: int, scan: ScanTime) -> TiffMeta:
    return TiffMeta(
        description=token(seed, "S", n, "DESC"),
        datetime=scan.tiff_datetime,
        software=token(seed, "S", n, "SOFT"),
        artist=token(seed, "S", n, "ARTS"),
        host_computer=token(seed, "S", n, "HOST"),
        document_name=token(seed, "S", n, "DOCN"),
        mpp=TIFF_MPP,
    )


def _tiff_canaries(m: TiffMeta) -> list[tuple[str, str]]:
    return [
        ("tiff.ImageDescription", m.description),
        ("tiff.DateTime", m.datetime),
        ("tiff.Software", m.software),
        ("tiff.Artist", m.artist),
        ("tiff.HostComputer", m.host_computer),
        ("tiff.DocumentName", m.document_name),
    ]


def write_slide(
    plan: CohortPlan, slide: SlidePlan, path: Path, scan: ScanTime, base_size: tuple[int, int]
) -> list[tuple[str, str]]:
    """Write one slide file; return its (field, value) canaries actually present."""
    seed = plan.seed
    tissue_seed = offset(seed, "tissue", slide.number, span=2**62)
    shape_seed = offset(seed, "block-shape", slide.block, span=2**62)
    mpp = TIFF_MPP if slide.kind == "tiff" else SVS_MPP
    level0 = tissue_image(tissue_seed, base_size, shape_seed=shape_seed, scale=0.5 / mpp)
    lines = label_lines(plan, slide)
    label = render_label(lines)
    found: list[tuple[str, str]]
    if slide.kind == "tiff":
        tmeta = _tiff_meta(seed, slide.number, scan)
        write_generic_tiff(path, level0, tmeta, label)
        found = _tiff_canaries(tmeta)
    else:
        smeta = _svs_meta(seed, slide.number, scan)
        write_svs(path, level0, smeta, label, render_macro(level0, label))
        found = _svs_canaries(smeta)
    found += [("label.text", line) for line in lines[:2]]
    if slide.corrupt:
        data = path.read_bytes()
        data = data[: int(len(data) * CORRUPT_FRACTION)]
        path.write_bytes(data)
        found = [(f, v) for f, v in found if not f.startswith("label.") and v.encode() in data]
    return found


def _check_unique(canaries: list[Canary]) -> None:
    """Metadata canaries must belong to exactly one slide (hash-derived values could collide)."""
    owner: dict[str, str] = {}
    for c in canaries:
        metadata = c["field"].startswith(("aperio.", "tiff."))
        if metadata and owner.setdefault(c["value"], c["slide"]) != c["slide"]:
            msg = f"canary collision in field {c['field']}: use another seed"
            raise RuntimeError(msg)


def generate_cohort(
    out: Path,
    *,
    slides: int,
    patients: int,
    seed: int,
    tiff_every: int = 4,
    corrupt: int = 0,
    base_size: tuple[int, int] = (2048, 3072),
) -> SynthCohort:
    """Write a synthetic cohort under `out` and describe it. Deterministic in all arguments.

    `out` is created if needed; files of a previous cohort in the same folder are replaced
    (slide files `S####.svs|tiff` that the new cohort does not have are deleted).
    """
    plan = plan_cohort(seed, slides, patients, tiff_every, corrupt)
    out = Path(out)
    slides_dir = out / "slides"
    slides_dir.mkdir(parents=True, exist_ok=True)
    wanted = {s.filename for s in plan.slides}
    for stale in (
        *slides_dir.glob("S[0-9][0-9][0-9][0-9].svs"),
        *slides_dir.glob("S[0-9][0-9][0-9][0-9].tiff"),
    ):
        if stale.name not in wanted:
            stale.unlink()  # left over from an earlier, larger cohort in the same folder
    times = UniqueScanTimes()
    rows: list[dict[str, object]] = []
    canaries: list[Canary] = []
    for slide in plan.slides:
        block = plan.blocks[slide.block - 1]
        patient = plan.patients[slide.patient - 1]
        scan = times.after(block.collected, seed, slide.number)
        rel = f"slides/{slide.filename}"
        found = write_slide(plan, slide, slides_dir / slide.filename, scan, base_size)
        collected = block.collected.isoformat()
        found += [
            ("cohort.patient", patient.id),
            ("cohort.block", block.id),
            ("cohort.specimen", block.specimen),
            ("cohort.collection_date", collected),
        ]
        canaries += [{"slide": rel, "field": f, "value": v} for f, v in found]
        rows.append(
            {
                "slide": slide.filename,
                "patient": patient.id,
                "block": block.id,
                "specimen": block.specimen,
                "age": patient.age,
                "sex": patient.sex,
                "diagnosis": patient.diagnosis,
                "site": patient.site,
                "collection_date": collected,
            }
        )
    _check_unique(canaries)
    cohort_csv = out / "cohort.csv"
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.to_csv(cohort_csv, index=False, lineterminator="\n", encoding="utf-8")
    canaries_json = out / "canaries.json"
    canaries_json.write_text(json.dumps({"canaries": canaries}, indent=1) + "\n", "utf-8")
    return SynthCohort(
        out,
        slides_dir,
        cohort_csv,
        canaries_json,
        n_slides=slides,
        n_patients=patients,
        n_corrupt=corrupt,
    )
