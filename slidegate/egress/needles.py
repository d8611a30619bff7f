"""The needle set of a release: what must never leave, labelled by rule id (never by value).

Needles (all PHI: build them in the private work area, never log them):
- `egress.field-value`: every inventory value the plan does not keep (dropped or coarsened;
  every value of a slide that has no plan), with its date-like parts;
- `egress.field-name`: every source field name the policies do not know (an Aperio
  description key is free text: "Jane Roe 1970-01-01 = x" makes the key itself PHI), bare
  (without slidegate's namespace) and in full, and its date-like parts;
- `egress.canary`: every canary of the spec's canaries file;
- `egress.cohort-id`: the source cohort table's patient, block and specimen identifiers and
  the exact values of every date column, and every value of a column the policy drops;
- `egress.source-name`: the source file and folder names of every slide (and file stems),
  and the source root's own folder name.

Values carried legitimately (slidegate's own vocabulary, a kept value, a released cell) and
values too short to search are left out, and counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import pandas as pd

from slidegate.audit.needles import (
    GENERIC_WORDS,
    ZARR_VOCABULARY,
    legit_values,
    phi_needles,
    too_short,
)
from slidegate.models import DeidPlan, SlideFacts

FIELD_VALUE = "egress.field-value"
FIELD_NAME = "egress.field-name"
CANARY = "egress.canary"
COHORT_ID = "egress.cohort-id"
COHORT_DROPPED = "egress.cohort-dropped-column"
SOURCE_NAME = "egress.source-name"

#: words of the release layout itself: a source folder called "slides" is not a leak
LAYOUT_WORDS = frozenset(
    {
        "slides",
        "reports",
        "cohort",
        "cohort.csv",
        "manifest",
        "manifest.json",
        "sha256sums",
        "data-docs",
        "validation",
        "audit",
        "risk",
        "ome.zarr",
        "zarr",
        "zarr.json",
        "source",
        "sources",
        "data",
        "index",
        "index.html",
        # what the reports call the images they drop (a CZI attachment named "Label" is vendor
        # vocabulary, and "label" is inside the Data Docs' "aria-labelledby")
        "label",
        "macro",
        "thumbnail",
        "overview",
        "preview",
        "pyramid",
    }
)
_DATE_RE = re.compile(r"\b(\d{4}[-:/.]\d{1,2}[-:/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\b")
#: a bare field name that is one identifier-like word ("AppMag", "Columns") is vendor
#: vocabulary; searched only in full ("aperio.AppMag"), as a bare word it would match prose
_TOKEN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ID_KINDS = frozenset({"p", "b", "x"})
#: a source name that is one plain lower-case word ("burned", "folder", "scans") is prose that
#: reports and reasons use too; identifiers carry digits, capitals or separators
_WORD = re.compile(r"^[a-z]+$")
_PLAIN_WORD = re.compile(r"^[A-Za-z][a-z]+$")


@dataclass
class NeedleSet:
    """(rule id, value) pairs, and how many candidate values were left out, per rule id."""

    needles: list[tuple[str, str]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, rule: str, value: str, known: frozenset[str] = frozenset()) -> None:
        text = value.strip()
        low = text.lower()
        core = {c for c in low if c.isalnum()}
        if (
            not text
            or too_short(text)
            or len(core) <= 1  # "0.0000", "00:00:00", "----": one repeated character
            or low in GENERIC_WORDS
            or low in ZARR_VOCABULARY
            or low in LAYOUT_WORDS
            or any(low in k for k in known)
        ):
            self.skipped[rule] = self.skipped.get(rule, 0) + 1
            return
        self.needles.append((rule, text))

    def drop_inside(self, rules: set[str], texts: Iterable[str]) -> None:
        """Leave out the needles of `rules` that occur inside one of `texts` (the policies'
        own text, released cells: a report quoting them cannot be told from a leak)."""
        candidates = [v for r, v in self.needles if r in rules]
        inside = _inside(candidates, texts)
        kept = []
        for r, v in self.needles:
            if r in rules and v.strip().lower() in inside:
                self.skipped[r] = self.skipped.get(r, 0) + 1
            else:
                kept.append((r, v))
        self.needles = kept

    def drop_words(self, rules: set[str]) -> None:
        """Leave out the needles of `rules` that are one plain word ("Normal", "Overview",
        "auto"): report prose and HTML templates hold them. Release-level files only: the
        slide's audit still searches them in every slide byte."""
        kept = []
        for r, v in self.needles:
            if r in rules and _PLAIN_WORD.match(v.strip()):
                self.skipped[r] = self.skipped.get(r, 0) + 1
            else:
                kept.append((r, v))
        self.needles = kept

    def extend(self, other: NeedleSet) -> None:
        self.needles.extend(other.needles)
        for k, n in other.skipped.items():
            self.skipped[k] = self.skipped.get(k, 0) + n

    def __len__(self) -> int:
        return len(self.needles)


def slide_needles(
    facts: SlideFacts, plan: DeidPlan | None, vocabulary: frozenset[str] = frozenset()
) -> NeedleSet:
    """Field values (not kept) and unknown field names of one slide. `vocabulary`: names the
    policies know (lowercased), never needles."""
    out = NeedleSet()
    if plan is not None:
        for value in phi_needles(facts, plan).needles.values():
            out.add(FIELD_VALUE, value.decode("utf-8", "replace"))
        known = frozenset(legit_values(plan)) | vocabulary
    else:  # no plan (quarantined at inventory): every value stays inside
        known = vocabulary
        for f in facts.fields:
            out.add(FIELD_VALUE, f.value, known)
            for m in _DATE_RE.finditer(f.value):
                out.add(FIELD_VALUE, m.group(0), known)
    for name in sorted({f.name for f in facts.fields}):
        if name.lower() in vocabulary:
            continue
        bare = name.split(".", 1)[1] if "." in name else name
        out.add(FIELD_NAME, name, known)
        if not _TOKEN.match(bare):
            out.add(FIELD_NAME, bare, known)
        for m in _DATE_RE.finditer(bare):
            out.add(FIELD_NAME, m.group(0), known)
    return out


def canary_needles(canaries: Sequence[tuple[str, str]]) -> NeedleSet:
    out = NeedleSet()
    for _label, value in canaries:
        out.add(CANARY, value)
    return out


def cohort_needles(
    source: pd.DataFrame,
    columns: Mapping[str, object],
    released: pd.DataFrame | None = None,
) -> NeedleSet:
    """Identifiers of the source cohort table. `columns`: the metadata policy's column rules
    (source column -> rule with `action`, `kind`, `hierarchy`); a column without a rule counts
    as dropped. Values of dropped columns that a released cell contains are left out."""
    out = NeedleSet()
    dropped: list[str] = []
    for col in source.columns:
        rule = columns.get(str(col))
        action = getattr(rule, "action", "drop")
        kind = getattr(rule, "kind", None)
        hierarchy = getattr(rule, "hierarchy", None)
        values = sorted({str(v) for v in source[col] if str(v).strip()})
        if (action == "pseudonymize" and kind in _ID_KINDS) or hierarchy == "date":
            for v in values:
                out.add(COHORT_ID, v)
        elif action == "drop":
            dropped.extend(values)
    inside = _inside_cells(dropped, released) if released is not None else set()
    for v in dropped:
        if v.strip().lower() in inside:
            out.skipped[COHORT_DROPPED] = out.skipped.get(COHORT_DROPPED, 0) + 1
        else:
            out.add(COHORT_DROPPED, v)
    return out


def table_cells(table: pd.DataFrame) -> list[str]:
    return [str(v) for col in table.columns for v in table[col]]


def _inside_cells(values: Sequence[str], table: pd.DataFrame) -> set[str]:
    return _inside(values, table_cells(table))


def _inside(values: Sequence[str], texts: Iterable[str]) -> set[str]:
    """The values (lowercased) that occur inside one of `texts`: one Aho-Corasick pass over
    all texts, not values x texts substring tests (a large cohort has 10^5 of each)."""
    import ahocorasick_rs

    patterns = sorted({v.strip().lower() for v in values if v.strip()})
    text = "\x00".join(t.lower() for t in texts)
    if not patterns or not text:
        return set()
    ac = ahocorasick_rs.AhoCorasick(patterns)
    return {patterns[i] for i, _, _ in ac.find_matches_as_indexes(text, overlapping=True)}


def source_name_needles(
    slide_ids: Iterable[str], roots: Iterable[str] = (), known: Iterable[str] = ()
) -> NeedleSet:
    """Each folder and file name of the slides' source paths (relative to the source root),
    file stems too, and the source root folders' own names. A name inside a `known` text
    (slidegate's and the policies' vocabulary, format names, released cells: a folder called
    "dicom" or "colon") and a plain lower-case word are left out (counted)."""
    out = NeedleSet()
    names: set[str] = set()
    for sid in slide_ids:
        parts = PurePosixPath(sid.replace("\\", "/")).parts
        for part in parts:
            if part in ("/", ".", ".."):
                continue
            names.add(part)
            stem = part.split(".", 1)[0]
            if stem:
                names.add(stem)
    for root in roots:
        name = PurePosixPath(root.rstrip("/")).name
        if name:
            names.add(name)
    inside = _inside(sorted(names), known)
    for name in sorted(names):
        if name.strip().lower() in inside or _WORD.match(name):
            out.skipped[SOURCE_NAME] = out.skipped.get(SOURCE_NAME, 0) + 1
        else:
            out.add(SOURCE_NAME, name)
    return out


def policy_vocabulary(field_names: Iterable[str], output_keys: Iterable[str]) -> frozenset[str]:
    """Names slidegate's policies know (lowercased): the deid rules' field names and the
    output metadata keys. Vendor vocabulary, never a needle on their own."""
    return frozenset(n.lower() for n in [*field_names, *output_keys] if n)
