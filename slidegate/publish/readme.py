"""The release's own `README.md`: what the release is, how to verify and open it, a codebook of
`cohort.csv` and a table of the published slides.

Built only from what the release publishes or slidegate decided, never from source text:
- the codebook from the metadata policy's column rules (action, pseudonym kind, hierarchy and
  level, expectations, the steward's `meaning`), the risk policy's generalisation ladders and
  the levels risk mitigation applied (`reports/risk.json` "levels");
- the slide table from each published OME-Zarr's own metadata (multiscales, omero, array
  shapes, dtypes and codecs) and the slide's format name (published in `reports/slides.json`).
The file is a release-level object: finalize searches it through the egress gate like
`cohort.csv` and the reports, and lists it in `SHA256SUMS` and `manifest.json`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slidegate.models import SlideReport
    from slidegate.risk.ladders import Hierarchies, Ladder
    from slidegate.risk.policy import RiskPolicy
    from slidegate.stages.cohort import CohortOutcome
    from slidegate.stages.context import ReleaseContext
    from slidegate.validate.policy import ColumnRule, MetadataPolicy

README = "README.md"

#: slidegate format name -> the family of readers and file layouts it belongs to (no vendor
#: names: a vendor is a metadata value a deid policy may drop, so the gate would search for it)
FAMILIES = {
    **{f: "TIFF" for f in ("svs", "tiff", "ndpi", "ome-tiff", "qptiff", "philips", "bif", "scn")},
    "czi": "CZI", "mrxs": "MIRAX", "dicom": "DICOM",
}  # fmt: skip
PSEUDONYM_KINDS = {"s": "slide", "p": "patient", "b": "tissue block", "x": "specimen"}
#: what a released value looks like at each level of each ladder kind
LEVEL_VALUES = {
    ("bands", "exact"): "age in years (`62`)",
    ("bands", "band5"): "5-year bands (`60-64`)",
    ("bands", "band10"): "10-year bands (`60-69`)",
    ("bands", "band20"): "20-year bands (`60-79`)",
    ("dates", "day"): "a date (`YYYY-MM-DD`)",
    ("dates", "month"): "a month (`YYYY-MM`)",
    ("dates", "year"): "a year (`YYYY`)",
    ("dates", "year5"): "a 5-year range (`YYYY-YYYY`)",
    ("icd10", "code"): "an ICD-10 code (`C18.7`)",
    ("icd10", "category"): "an ICD-10 category (`C18`)",
    ("icd10", "block"): "an ICD-10 block range (`C15-C26`)",
    ("icd10", "chapter"): "an ICD-10 chapter range (`C00-D48`)",
}
_SKIP_CODECS = frozenset({"bytes", "transpose", "crc32c"})


@dataclass(frozen=True)
class SlideEntry:
    """One published slide, as its OME-Zarr describes itself."""

    pseudonym: str
    format: str
    levels: int
    height: int
    width: int
    pixel_size: tuple[float, float] | None  # (y, x) at level 0, in `unit`
    unit: str | None
    channels: int
    labels: tuple[str, ...]
    dtype: str
    codec: str
    copy: str | None = None  # release key of the original-format copy


def codec_label(codecs: Sequence[Mapping[str, Any]]) -> str:
    """'jpeg in shards', 'blosc zstd', ...: the chunk codecs, innermost first named."""
    names: list[str] = []
    sharded = False
    for codec in codecs:
        name = str(codec.get("name", ""))
        config = codec.get("configuration") or {}
        if name == "sharding_indexed":
            sharded = True
            names.append(codec_label(config.get("codecs", [])))
        elif name == "blosc":
            names.append(f"blosc {config.get('cname', '')}".strip())
        elif name and name not in _SKIP_CODECS:
            names.append(name)
    label = " + ".join(n for n in names if n) or "uncompressed"
    return f"{label} (sharded)" if sharded else label


def _codecs(group: Any, datasets: Sequence[Mapping[str, Any]]) -> str:
    """The codec of every level, once each ('jpeg (sharded), levels 1-2: blosc zstd ...')."""
    labels = [codec_label(group[d["path"]].metadata.to_dict().get("codecs", [])) for d in datasets]
    parts = [labels[0]]
    for label in dict.fromkeys(labels[1:]):
        if label != labels[0]:
            idx = [i for i, x in enumerate(labels) if x == label]
            where = f"level {idx[0]}" if len(idx) == 1 else f"levels {idx[0]}-{idx[-1]}"
            parts.append(f"{where}: {label}")
    return ", ".join(parts)


def describe_slide(pseudonym: str, fmt: str, group: Any, copy: str | None = None) -> SlideEntry:
    """A SlideEntry from an opened OME-Zarr group (zarr-python): its NGFF attributes and the
    level-0 array's metadata."""
    ome = group.attrs.asdict().get("ome", {})
    ms = ome["multiscales"][0]
    datasets = ms["datasets"]
    axes = ms.get("axes", [])
    arr = group[datasets[0]["path"]]
    meta = arr.metadata.to_dict()
    shape = tuple(int(s) for s in arr.shape)
    names = [a.get("name") for a in axes]
    c = shape[names.index("c")] if "c" in names else 1
    scale = datasets[0]["coordinateTransformations"][0]["scale"]
    units = {a.get("unit") for a in axes if a.get("type") == "space"}
    unit = units.pop() if len(units) == 1 else None
    yi, xi = names.index("y"), names.index("x")
    labels = tuple(str(ch.get("label", "")) for ch in ome.get("omero", {}).get("channels", []))
    return SlideEntry(
        pseudonym=pseudonym,
        format=fmt,
        levels=len(datasets),
        height=shape[yi],
        width=shape[xi],
        pixel_size=(float(scale[yi]), float(scale[xi])) if unit else None,
        unit=unit,
        channels=c,
        labels=labels,
        dtype=str(meta.get("data_type", arr.dtype)),
        codec=_codecs(group, datasets),
        copy=copy,
    )


def _level_text(ladder: Ladder | None, level: str) -> str:
    if ladder is None:
        return level
    if level == "*":
        return "suppressed (`*`)"
    if ladder.kind == "map":
        if level == ladder.levels[0]:
            return "as recorded"
        organs = ", ".join(f"`{v}`" for v in sorted(set(ladder.map.values())))
        return f"{level} ({organs}, or a value already at that level)"
    text = LEVEL_VALUES.get((ladder.kind, level), level)
    if ladder.kind == "bands" and ladder.top_code is not None:
        text += f", `{ladder.top_code}+` from {ladder.top_code}"
    return text


@dataclass(frozen=True)
class Column:
    name: str
    meaning: str
    generalisation: str
    values: str


def codebook(
    columns: Iterable[str],
    metadata: MetadataPolicy,
    risk: RiskPolicy,
    hierarchies: Hierarchies,
    applied: Mapping[str, str],
) -> list[Column]:
    """One entry per published column, from the rules that produced it. `applied`: released
    column -> level risk mitigation released it at (risk.json "levels")."""
    rules = {name: rule for _, name, rule in metadata.released()}
    out = []
    for name in columns:
        rule = rules.get(name)
        if rule is None:  # a column no rule released: say so rather than guess
            out.append(Column(name, "(no metadata policy rule)", "-", "-"))
            continue
        out.append(_column(name, rule, risk, hierarchies, applied))
    return out


def _column(
    name: str, rule: ColumnRule, risk: RiskPolicy, hierarchies: Hierarchies,
    applied: Mapping[str, str],
) -> Column:  # fmt: skip
    from slidegate.risk.hierarchy import GeneralisationError

    gen = risk.generalisation.get(name)
    ladder = None
    if gen is not None:
        try:
            ladder = hierarchies.get(gen.hierarchy)
        except GeneralisationError:
            ladder = None
    values: list[str] = []
    if rule.action == "pseudonymize":
        kind = PSEUDONYM_KINDS.get(rule.kind or "", rule.kind or "")
        meaning = rule.meaning or f"{kind} pseudonym"
        level = f"keyed pseudonym (HMAC-SHA256 under the release key, kind `{rule.kind}`)"
        values.append(f"`{rule.kind}-` and 16 lower-case hex digits")
    else:
        meaning = rule.meaning or (f"{name} ({rule.action})")
        if rule.action == "generalize":
            level = f"metadata policy: {rule.hierarchy} to {rule.level}"
            if rule.top_code is not None:
                level += f", top-coded at {rule.top_code}"
        else:
            level = "metadata policy: released as recorded"
        if gen is not None:
            final = applied.get(name, gen.released_at)
            level += f"; risk mitigation: {final}"
            if final != gen.released_at:
                level += f" (raised from {gen.released_at})"
            values.append(_level_text(ladder, final))
    for exp in rule.expect:
        if exp.values is not None:
            values.append("one of " + ", ".join(f"`{v}`" for v in exp.values))
        elif exp.regex is not None:
            values.append(f"matches `{exp.regex}`")
        elif exp.not_null:
            values.append("never empty" if exp.severity == "block" else "may be empty (warned)")
    return Column(name, meaning, level, "; ".join(values) or "any")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _slide_row(s: SlideEntry) -> str:
    px = "unknown"
    if s.pixel_size is not None:
        py, pxx = s.pixel_size
        px = f"{pxx:.4g} x {py:.4g} {s.unit}" if abs(py - pxx) > 1e-9 else f"{pxx:.4g} {s.unit}"
    chans = f"{s.channels}" + (f" ({', '.join(s.labels)})" if s.labels else "")
    family = f"{FAMILIES.get(s.format, s.format)} ({s.format})"
    path = f"`slides/{s.pseudonym}.ome.zarr`" + (f", copy `{s.copy}`" if s.copy else "")
    cells = [
        f"`{s.pseudonym}`", family, str(s.levels), f"{s.width} x {s.height}", px, chans,
        s.dtype, s.codec, path,
    ]  # fmt: skip
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def build_readme(
    *,
    release: str,
    profile: str,
    access: str,
    date: str,
    version: str,
    counts: Mapping[str, int],
    columns: Sequence[Column],
    slides: Sequence[SlideEntry],
) -> str:
    """The Markdown text of the release README."""
    example = f"slides/{slides[0].pseudonym}.ome.zarr" if slides else "slides/<slide>.ome.zarr"
    lines = [
        f"# Release `{release}`",
        "",
        "A de-identified whole-slide image cohort released by slidegate "
        f"{version}: {len(slides)} slide(s) as OME-Zarr (OME-NGFF 0.5, Zarr v3) and a "
        "cohort table.",
        "",
        f"- release id: `{release}`",
        f"- profile: `{profile}` (access: {access})",
        f"- date: {date}",
        f"- slides published: {len(slides)} (of {sum(counts.values())} in the cohort: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + ")",
        "",
        "## Contents",
        "",
        "- `slides/<pseudonym>.ome.zarr/`: one OME-Zarr image per slide (pyramid levels `0`, "
        "`1`, ...; axes `c`, `y`, `x`)",
        "- `cohort.csv`: one row per published slide, columns in the codebook below",
        "- `reports/`: risk (`risk.md`, `risk.json`), validation (`validation.json`, Data "
        "Docs), per-slide outcomes (`slides.json`), audit summary (`audit.json`)",
        "- `SHA256SUMS`: the sha256 of every object but itself and `manifest.json` (this "
        "README included)",
        "- `manifest.json`: written last; the release is complete when it exists",
        "",
        "## Verify",
        "",
        "```sh",
        f"cd {release} && sha256sum -c SHA256SUMS   # every object, this README included",
        f"slidegate verify /path/to/{release}        # also: nothing missing, nothing extra",
        "```",
        "",
        "## Open",
        "",
        "Some levels keep the scanner's JPEG or JPEG 2000 tiles as they were: zarr-python reads "
        "them once the `slidegate-receiver` package (folder `receiver/` of the slidegate "
        "source) is installed; it registers the codecs through zarr's entry points, no code.",
        "",
        "```sh",
        "pip install zarr ./receiver      # from a checkout of the slidegate source",
        "```",
        "",
        "zarr-python:",
        "",
        "```python",
        "import zarr",
        f'group = zarr.open_group("{example}", mode="r")',
        'print(group.attrs["ome"]["multiscales"][0]["datasets"])  # levels and pixel sizes',
        'level0 = group["0"]            # (c, y, x)',
        "tile = level0[:, :512, :512]   # numpy array",
        "```",
        "",
        "dask:",
        "",
        "```python",
        "import dask.array as da",
        f'level0 = da.from_zarr("{example}", component="0")',
        "print(level0.mean(axis=(1, 2)).compute())  # mean per channel",
        "```",
        "",
        "ome-zarr-py (0.18 with zarr 3 reads NGFF 0.5; install `./receiver` beside it):",
        "",
        "```python",
        "from ome_zarr.io import parse_url",
        "from ome_zarr.reader import Reader",
        f'node = next(iter(Reader(parse_url("{example}"))()))',
        "pyramid = node.data  # list of dask arrays, level 0 first",
        "```",
        "",
        "napari (with the napari-ome-zarr plugin):",
        "",
        "```sh",
        f"napari --plugin napari-ome-zarr {example}",
        "```",
        "",
        "## cohort.csv codebook",
        "",
        "| column | meaning | generalisation applied | allowed values |",
        "| --- | --- | --- | --- |",
        *(
            "| "
            + " | ".join(_cell(x) for x in (f"`{c.name}`", c.meaning, c.generalisation, c.values))
            + " |"
            for c in columns
        ),
        "",
        "## Slides",
        "",
        "| pseudonym | format family | levels | level 0 (w x h) | pixel size | channels | "
        "dtype | codec | objects |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_slide_row(s) for s in slides),
        "",
    ]
    return "\n".join(lines)


def write_release_readme(
    ctx: ReleaseContext, outcome: CohortOutcome, copy_key: Callable[[SlideReport], str]
) -> Path:
    """Build the README of the release `outcome` decided and write it to the private work area
    (`<work>/release/README.md`, beside `cohort.csv`); finalize publishes it through the gate."""
    import csv
    import json
    from datetime import UTC, datetime

    import slidegate
    from slidegate.staging import open_staged

    with open(outcome.cohort_csv, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    risk_json = Path(outcome.reports_dir) / "risk.json"
    applied: dict[str, str] = {}
    if risk_json.is_file():
        levels = json.loads(risk_json.read_text(encoding="utf-8")).get("levels") or {}
        applied = {str(k): str(v) for k, v in levels.items()}
    pol = ctx.policies
    columns = codebook(header, pol.metadata, pol.risk, pol.hierarchies, applied)
    slides = [
        describe_slide(
            s.pseudonym,
            s.format or "",
            open_staged(str(s.output_path), ctx.settings),
            copy_key(s) if s.copy_path is not None else None,
        )
        for s in outcome.approved
    ]
    counts = {
        status: sum(s.status == status for s in outcome.slides)
        for status in ("approved", "withheld", "quarantined")
    }
    text = build_readme(
        release=ctx.release,
        profile=ctx.profile,
        access=str(pol.profile.access),
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
        version=slidegate.__version__,
        counts=counts,
        columns=columns,
        slides=slides,
    )
    path = Path(outcome.cohort_csv).parent / README
    path.write_text(text, encoding="utf-8")
    return path
