"""Egress gate stages: slide admission after the audit, the release gate before the manifest.

`admit_slide` (worker, right after a clean audit): every key of the slide's outputs is searched
for the slide's needles (its field values and unknown field names, canaries, cohort identifiers,
source names) and so is every byte of every object: text documents (zarr.json...) in full,
base64 inside included, any case; binary objects (chunks, shards, the original-format copy)
case-sensitively in the value's own, lower and upper case. Then the sha256 of every object is
recorded as admitted and the publish step passes it by hash. A finding quarantines the slide
(reason: rule ids). The needles every slide shares (canaries, cohort identifiers, source
names) are built and compiled once per process and release (`shared_needles`,
`matcher.cached`): a slide's admission costs the same in a cohort of 10 or 10,000.

`release_gate` (flow, at finalize): a gate over the target with the whole release's needle
set, every slide's inventory included: cohort.csv, reports, Data Docs, SHA256SUMS and the
manifest are searched in full, every key once more. A slide whose inventory cannot be read
here stops the release (fail closed).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from slidegate.audit.copy_check import copy_needles
from slidegate.audit.scan import iter_files
from slidegate.bounded import Bound, run_bounded
from slidegate.cohort import read_cohort
from slidegate.egress.gate import Gate, masked
from slidegate.egress.matcher import Matcher, cached, is_document
from slidegate.egress.needles import (
    COHORT_DROPPED,
    FIELD_NAME,
    FIELD_VALUE,
    NeedleSet,
    canary_needles,
    cohort_needles,
    policy_vocabulary,
    slide_needles,
    source_name_needles,
    table_cells,
)
from slidegate.errors import EgressBlocked
from slidegate.formats import read_facts
from slidegate.models import DeidPlan, SlideFacts, SlideReport
from slidegate.publish.stores import Store, sha256_file
from slidegate.sources import slide_source
from slidegate.spec import CohortSlide
from slidegate.stages.context import ReleaseContext

log = logging.getLogger("slidegate.stages")

NEEDLES_UNAVAILABLE = "egress.needles-unavailable"
#: format and container words slidegate writes itself (plan formats, OME-Zarr, codecs)
FORMAT_WORDS = ("dicom", "tiff", "ome-tiff", "ome.tiff", "ome-zarr", "ome.zarr", "jpeg", "jpeg2000")


def vocabulary(ctx: ReleaseContext, plans: Iterable[DeidPlan] = ()) -> frozenset[str]:
    """Names the policies know: deid rule names, allowed output keys, the plans' output keys."""
    names = [n for pol in ctx.policies.deid.values() for n in pol.fields]
    keys = list(ctx.policies.metadata.output_metadata.allowed_keys)
    keys += [f.output_key or "" for p in plans for f in p.fields]
    return policy_vocabulary(names, keys)


def common_needles(
    ctx: ReleaseContext, *, dropped_columns: bool, released: Path | None = None
) -> NeedleSet:
    """Canaries, cohort identifiers and source names: the same for every slide. `released`:
    the released cohort.csv (a dropped column's value inside a released cell is no needle)."""
    out = canary_needles(ctx.canaries())
    table = read_cohort(released) if released is not None and released.is_file() else None
    cohort = cohort_needles(read_cohort(ctx.cohort_path), ctx.policies.metadata.columns, table)
    if not dropped_columns:  # slides carry no cohort cell: only identifiers are searched
        cohort.needles = [(r, v) for r, v in cohort.needles if r != COHORT_DROPPED]
    out.extend(cohort)
    out.extend(source_names(ctx, table))
    return out


def source_names(ctx: ReleaseContext, table: Any = None) -> NeedleSet:
    """The folder and file names of the context's slides and the source root's name."""
    known = [*vocabulary(ctx), *ctx.policies.deid, *(p.format for p in ctx.policies.deid.values())]
    known += list(FORMAT_WORDS)
    if table is not None:
        known += table_cells(table)
    ids = [s.slide_id for s in ctx.slides]
    return source_name_needles(ids, [str(ctx.source_root)], known)


def _output_files(report: SlideReport) -> list[tuple[str, Path]]:
    """(release key relative to the release, local path) of every object of a slide."""
    from slidegate.stages.publish import copy_key

    assert report.output_path is not None
    out = Path(report.output_path)
    dest = f"slides/{report.pseudonym}.ome.zarr"
    files = [(f"{dest}/{p.relative_to(out).as_posix()}", p) for p in iter_files(out)]
    if report.copy_path is not None:
        copy = Path(report.copy_path)
        if copy.is_dir():
            files += [
                (f"{copy_key(report)}/{p.relative_to(copy).as_posix()}", p)
                for p in iter_files(copy)
            ]
        else:
            files.append((copy_key(report), copy))
    return files


_shared: OrderedDict[tuple[Any, ...], tuple[tuple[str, str], ...]] = OrderedDict()
_shared_lock = threading.Lock()


def _stat(path: Path | None) -> tuple[Any, ...]:
    if path is None:
        return ()
    try:
        st = path.stat()
    except OSError:
        return (str(path),)
    return (str(path), st.st_mtime_ns, st.st_size)


def shared_needles(ctx: ReleaseContext) -> tuple[tuple[str, str], ...]:
    """`common_needles` of the slides' admission, built once per process and release (the
    cohort table is read once, not once per slide); a changed cohort or canaries file, spec or
    policy builds them again."""
    key = (ctx.release, ctx.spec_hash, ctx.policy_hash,
           _stat(ctx.cohort_path), _stat(ctx.canaries_path))  # fmt: skip
    with _shared_lock:
        if key in _shared:
            return _shared[key]
    # without the context's own slides: their source names are the caller's (`source_names`),
    # else the first slide's names would be cached and searched for in every later slide
    needles = tuple(common_needles(replace(ctx, slides=()), dropped_columns=False).needles)
    with _shared_lock:
        _shared[key] = needles
        while len(_shared) > 4:
            _shared.popitem(last=False)
    return needles


def scan_object(matchers: Sequence[Matcher], key: str, path: Path, own: frozenset[str]) -> set[str]:
    """Rule ids found in an object's key and every byte of it."""
    hits: set[str] = set()
    data = masked(path.read_bytes(), own) if is_document(key) else None
    for m in matchers:
        hits |= m.find(masked(key.encode("utf-8"), own))
        if data is not None:
            hits |= m.scan_document(data)
        else:
            with path.open("rb") as fh:
                hits |= m.scan_stream(fh)
    return hits


def slide_own_needles(
    ctx: ReleaseContext, facts: SlideFacts, plan: DeidPlan
) -> list[tuple[str, str]]:
    """The needles of this slide alone: its dropped values and unknown field names, and its
    folder and file names (`shared_needles` are the release's)."""
    own = list(slide_needles(facts, plan, vocabulary(ctx, [plan])).needles)
    return own + list(source_names(ctx).needles)


def admit_slide(
    ctx: ReleaseContext, report: SlideReport, facts: SlideFacts, plan: DeidPlan
) -> SlideReport:
    """Search keys and every byte of a freshly audited slide; record admitted hashes.
    Returns the report with `admitted` set, or quarantined (stage "gate") on a finding."""
    own_needles = slide_own_needles(ctx, facts, plan)
    shared = shared_needles(ctx)
    matchers = [Matcher(own_needles), cached(shared)]
    # the original-format copy is a DICOM file of technical attributes: the copy check's
    # needle set (no structural values, no standard UIDs), like the audit's copy scan
    copy_matchers = [
        Matcher(_copy_set(own_needles, plan.format)),
        cached(tuple(_copy_set(list(shared), plan.format))),
    ]
    admitted: list[str] = []
    rules: set[str] = set()
    own = frozenset({report.pseudonym})  # slidegate's own text, masked (see egress/gate.py)
    zarr_prefix = f"slides/{report.pseudonym}.ome.zarr/"
    for key, path in _output_files(report):
        chosen = matchers if key.startswith(zarr_prefix) else copy_matchers
        hits = scan_object(chosen, key, path, own)
        if hits:
            log.error(
                "slide %s: egress gate found %s in %s",
                report.pseudonym,
                ", ".join(sorted(hits)),
                matchers[0].redact(matchers[1].redact(key)),
            )
            rules |= hits
            continue
        admitted.append(sha256_file(path))
    if rules:
        reason = "egress: " + ", ".join(sorted(rules))
        return report.model_copy(
            update={"stage": "gate", "status": "quarantined", "reason": reason, "admitted": ()}
        )
    return report.model_copy(update={"admitted": tuple(sorted(set(admitted)))})


def _copy_set(needles: Sequence[tuple[str, str]], fmt: str) -> list[tuple[str, str]]:
    labelled = {f"{i}": v.encode("utf-8") for i, (_, v) in enumerate(needles)}
    kept = copy_needles(labelled, fmt)
    return [needles[int(i)] for i in kept]


def release_needles(
    ctx: ReleaseContext, slides: Sequence[SlideReport], cohort_csv: Path | None = None
) -> NeedleSet:
    """Every needle of the release: each slide's inventory (from the private work area),
    canaries, cohort identifiers and dropped columns, source names."""
    plans = [s.plan for s in slides if s.plan is not None]
    vocab = vocabulary(ctx, plans)
    out = common_needles(ctx, dropped_columns=True, released=cohort_csv)
    by_pseudonym = {s.pseudonym: s for s in slides}
    for slide in ctx.slides:
        pseudonym = ctx.pseudonyms[slide.slide_id]
        report = by_pseudonym.get(pseudonym)
        if report is not None and report.facts_path is None:
            continue  # never inventoried (quarantined at inventory): no values known
        plan = report.plan if report is not None else None
        out.extend(slide_needles(_facts(ctx, slide, pseudonym), plan, vocab))
    # the metadata policy's own text (column names, value sets, regexes with given names) is
    # quoted by the Data Docs, released cells by cohort.csv: values inside them are left out
    texts = [json.dumps(ctx.policies.metadata.model_dump(mode="json"))]
    if cohort_csv is not None and cohort_csv.is_file():
        texts += table_cells(read_cohort(cohort_csv))
    out.drop_inside({FIELD_VALUE, FIELD_NAME}, texts)
    out.drop_words({FIELD_VALUE, FIELD_NAME})
    return out


def third_party_assets() -> set[str]:
    """sha256 of Great Expectations' bundled Data Docs assets (CSS, JS, fonts, images): the
    same bytes in every release, no release data in them, admitted as they are."""
    import great_expectations

    static = Path(great_expectations.__file__).parent / "render" / "view" / "static"
    return {sha256_file(p) for p in iter_files(static)} if static.is_dir() else set()


def _facts(ctx: ReleaseContext, slide: CohortSlide, pseudonym: str) -> SlideFacts:
    """The slide's inventory: from the work area, or (workers without a shared disk) read
    again from the source. Neither possible: the release stops (fail closed)."""
    path = ctx.facts_path(pseudonym)
    if path.is_file():
        return SlideFacts.load(path)
    try:
        with slide_source(slide.path, ctx.settings, ctx.work) as src:  # bounded, as inventory
            return run_bounded(Bound.of(ctx.settings), pseudonym, read_facts, src, slide.slide_id)
    except Exception:
        log.error("egress gate: the inventory of slide %s cannot be read again", pseudonym)
        raise EgressBlocked(f"the inventory of slide {pseudonym}", {NEEDLES_UNAVAILABLE}) from None


def release_pseudonyms(ctx: ReleaseContext, cohort_csv: Path | None) -> set[str]:
    """The release's own pseudonyms: every slide's, and each pseudonymised column's cells of
    the released table."""
    out = set(ctx.pseudonyms.values())
    if cohort_csv is not None and cohort_csv.is_file():
        table = read_cohort(cohort_csv)
        for _src, name, rule in ctx.policies.metadata.released():
            if rule.action == "pseudonymize" and name in table.columns:
                out.update(str(v) for v in table[name])
    return out


def release_gate(
    ctx: ReleaseContext,
    store: Store,
    slides: Sequence[SlideReport],
    cohort_csv: Path | None = None,
) -> Gate:
    """The gate for the release-level files: the whole needle set; the approved slides'
    admitted objects pass by hash."""
    needles = release_needles(ctx, slides, cohort_csv)
    admitted = [h for s in slides if s.status == "approved" for h in s.admitted]
    admitted += sorted(third_party_assets())
    log.info(
        "egress gate: %d needle(s) (%d left out as too short or legitimate)",
        len(needles),
        sum(needles.skipped.values()),
    )
    pseudonyms = release_pseudonyms(ctx, cohort_csv)
    return Gate(store, Matcher(needles.needles), admitted, pseudonyms, own=[ctx.release])


def slide_gate(ctx: ReleaseContext, store: Store, report: SlideReport) -> Gate:
    """The gate for one approved slide's objects: admitted hashes only; keys searched for
    the needles every slide shares (the whole set is searched again at finalize)."""
    # the shared set only (compiled once per process): each slide's own source names were
    # searched in its keys at admission, and every key is searched again at finalize
    return Gate(
        store, cached(shared_needles(ctx)), report.admitted, ctx.pseudonyms.values(), [ctx.release]
    )
