"""The risk stage of a release: taxonomy, image features, the model, the ledger, the reports.

`score_release` takes the released (pseudonymised) table of the audited slides and their
reports, and returns a `RiskStage` that says, per candidate slide, approved or withheld with
the reason; `write_reports` writes risk.json, risk.md and risk.png (publishable, PHI-free), and
the ledger entries to the private work area for `slidegate.ledger.record_release`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from slidegate.ledger import Ledger, LedgerEntry, LedgerFlag
from slidegate.models import SlideReport, SlideSignature
from slidegate.profile import Policies
from slidegate.risk.model import assess_cohort
from slidegate.risk.policy import ImageLinkage
from slidegate.risk.qiset import column_roles
from slidegate.risk.report import risk_markdown, risk_plot_png
from slidegate.risk.result import CohortRisk
from slidegate.risk.signature import feature_vector, sign_output
from slidegate.risk.taxonomy import SlideTaxonomy, slide_taxonomy, table_taxonomy

#: opens a staged output by its location (`SlideReport.output_path`) as a zarr group
OpenOutput = Callable[[str], Any]

log = logging.getLogger("slidegate.risk")

#: private file (work area) with the ledger entries of the slides about to be published
LEDGER_ENTRIES = Path("private") / "ledger-entries.json"


@dataclass(frozen=True)
class RiskStage:
    risk: CohortRisk
    taxonomy: tuple[SlideTaxonomy, ...]
    flags: tuple[LedgerFlag, ...]
    #: candidate slide pseudonym -> reason it is withheld ("risk: ...", "ledger: ...")
    withheld: dict[str, str]
    candidates: tuple[str, ...]
    entries: tuple[LedgerEntry, ...] = field(default=())
    #: associated data column -> what was done to it (column names only)
    columns: dict[str, str] = field(default_factory=dict)
    #: released columns scored as quasi-identifiers, pseudonyms, declared non-identifying
    scored_columns: dict[str, object] = field(default_factory=dict)

    def decision(self, slide: str) -> tuple[str, str | None]:
        reason = self.withheld.get(slide)
        return ("withheld", reason) if reason else ("approved", None)

    @property
    def passed(self) -> bool:
        return self.risk.passed

    def released_table(self, slide_column: str = "slide") -> pd.DataFrame:
        """The mitigated table, approved candidate slides only (columns as released)."""
        table = self.risk.table()
        if table.empty:
            return table
        ok = [s for s in self.candidates if s not in self.withheld]
        return table[table[slide_column].isin(ok)].reset_index(drop=True)

    def figures(self) -> dict[str, float]:
        out = self.risk.figures()
        out["ledger_flags"] = float(len(self.flags))
        out["slides_with_identifying_parts"] = float(sum(not t.clean for t in self.taxonomy))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.risk.to_dict(),
            "taxonomy": [t.model_dump(mode="json") for t in self.taxonomy],
            "associated_data": self.columns,
            "scored_columns": self.scored_columns,
            "ledger": [f.__dict__ for f in self.flags],
            "withheld_slides": dict(sorted(self.withheld.items())),
        }

    def write_reports(self, reports_dir: Path, work: Path) -> None:
        reports_dir.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        (reports_dir / "risk.json").write_text(
            json.dumps(data, indent=1, sort_keys=True), encoding="utf-8"
        )
        md = risk_markdown(self.risk, data["taxonomy"], data["ledger"])
        exempt = self.scored_columns.get("non_identifying") or {}
        if isinstance(exempt, dict) and exempt:
            md += "\n## Published columns not scored (metadata policy: non_identifying)\n\n"
            md += "".join(f"- {c}: {why}\n" for c, why in exempt.items())
        if self.columns:
            md += "\n## Associated data columns\n\n"
            md += "".join(f"- {c}: {what}\n" for c, what in self.columns.items())
        (reports_dir / "risk.md").write_text(md, encoding="utf-8")
        risk_plot_png(self.risk, reports_dir / "risk.png")
        private = work / LEDGER_ENTRIES
        private.parent.mkdir(parents=True, exist_ok=True)
        approved = [e.__dict__ for e in self.entries if e.slide not in self.withheld]
        private.write_text(json.dumps(approved, indent=1), encoding="utf-8")


def signatures(
    reports: Mapping[str, SlideReport],
    open_output: OpenOutput | None = None,
    linkage: ImageLinkage | None = None,
) -> tuple[dict[str, SlideSignature], dict[str, str]]:
    """slide pseudonym -> its signature, as its task computed it (slides with an output only);
    a report without one (written by an older task) is signed here. Second: slides whose
    output could not be read, with the reason (they are withheld, the rest goes on)."""
    out: dict[str, SlideSignature] = {}
    unreadable: dict[str, str] = {}
    for slide, rep in reports.items():
        if rep.signature is not None:
            out[slide] = rep.signature
            continue
        try:
            staged = _staged(rep, open_output)
            if staged is not None:
                out[slide] = sign_output(staged, linkage)
        except Exception as exc:  # one unreadable output must not sink the cohort
            log.warning("slide %s withheld: risk inputs unreadable (%s)", slide, type(exc).__name__)
            unreadable[slide] = f"risk: output unreadable for the risk model ({type(exc).__name__})"
    return out, unreadable


def _staged(rep: SlideReport, open_output: OpenOutput | None) -> Any:
    """The staged output: a local folder, or the group `open_output` opens (staging on S3)."""
    if not rep.output_path:
        return None
    if open_output is not None:
        return open_output(rep.output_path)
    return Path(rep.output_path) if Path(rep.output_path).exists() else None


def score_release(
    scored: pd.DataFrame,
    reports: Mapping[str, SlideReport],
    policies: Policies,
    candidates: Sequence[str],
    *,
    ledger: Ledger | None = None,
    release: str = "",
    key_id: str = "",
    patient_ids: Mapping[str, str] | None = None,
    population: pd.DataFrame | None = None,
    source_columns: Sequence[str] = (),
    open_output: OpenOutput | None = None,
) -> RiskStage:
    """`scored`: released rows to score (candidates plus any rows published before, e.g. by a
    collection); `reports`: the audited slides' reports by pseudonym; `patient_ids`: slide
    pseudonym -> source patient id (private; used only for the ledger's keyed fingerprint);
    `open_output`: opens a staged output by its location (staging on S3), else local folders."""
    pol = policies.risk
    withheld: dict[str, str] = {}
    taxonomy = tuple(slide_taxonomy(s, reports[s].detail) for s in candidates if s in reports)
    for t in taxonomy:
        if not t.clean:
            withheld[t.slide] = "taxonomy: identifying part left (" + "; ".join(t.left) + ")"
    if population is None and pol.population is not None:
        population = pd.read_csv(pol.population, dtype=str, keep_default_na=False)
    mine = {s: reports[s] for s in candidates if s in reports}
    signed, unreadable = signatures(mine, open_output, pol.image_linkage)
    withheld.update({s: r for s, r in unreadable.items() if s not in withheld})
    features = {s: feature_vector(sig) for s, sig in signed.items()}
    table = scored[~scored[pol.slide_column].isin(set(withheld))].reset_index(drop=True)
    roles = column_roles(policies.metadata, pol)
    risk = assess_cohort(
        table,
        pol,
        policies.profile.risk_limits,
        policies.hierarchies,
        quasi_identifiers=roles.quasi_identifiers,
        features=features,
        population=population,
    )
    patient_of = dict(zip(table[pol.slide_column], table[pol.patient_column], strict=True))
    for s in candidates:
        if s in withheld or s not in patient_of:
            continue
        if not risk.passed or patient_of[s] not in risk.approved_patients:
            withheld[s] = risk.patient_reason(patient_of[s])  # the patient's reason first
        elif s in risk.withheld_slides:
            withheld[s] = risk.withheld_slides[s]
    entries: list[LedgerEntry] = []
    flags: list[LedgerFlag] = []
    if ledger is not None:
        for s, sig in signed.items():
            pid = (patient_ids or {}).get(s, "")
            entries.append(
                LedgerEntry(
                    slide=s,
                    tile_sha256=sig.tile_sha256,
                    phash=sig.phash,
                    patient_fp=ledger.patient_fingerprint(pid),
                )
            )
        pending = [e for e in entries if e.slide not in withheld]
        flags = ledger.check(pending, release, key_id, policies.profile.ledger)
        for f in flags:
            if f.severity == "block" and f.slide not in withheld:
                withheld[f.slide] = f.reason
            log.warning("ledger %s for slide %s: %s", f.severity, f.slide, f.kind)
    return RiskStage(
        risk=risk,
        taxonomy=taxonomy,
        flags=tuple(flags),
        withheld=withheld,
        candidates=tuple(candidates),
        entries=tuple(entries),
        columns=table_taxonomy(policies.metadata, [str(c) for c in source_columns]),
        scored_columns=roles.to_dict(),
    )
