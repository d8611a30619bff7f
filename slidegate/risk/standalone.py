"""`slidegate risk COHORT.csv --profile NAME [--slides DIR]`: the risk model alone.

Pseudonyms come from a throw-away random key (never stored): the report shows pseudonyms and
figures only. With `--slides`, each slide's facts are read (read-only), its de-identification
plan is made (pure) for the taxonomy, and its lowest pyramid level gives the image features.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from slidegate.bounded import Bound, run_bounded
from slidegate.cohort import build_release_table, read_cohort
from slidegate.deid.plan import plan_deid, summarize
from slidegate.errors import SlidegateError
from slidegate.formats import read_facts
from slidegate.models import SlideFacts
from slidegate.profile import load_policies
from slidegate.pseudonym import Pseudonymizer
from slidegate.risk.extractors import features_for
from slidegate.risk.images import source_lowest_level
from slidegate.risk.model import assess_cohort
from slidegate.risk.qiset import column_roles
from slidegate.risk.report import risk_markdown, risk_plot_png
from slidegate.risk.result import CohortRisk
from slidegate.risk.taxonomy import SlideTaxonomy, slide_taxonomy
from slidegate.settings import Settings

log = logging.getLogger("slidegate.risk")


def _slide_inputs(path: Path, name: str) -> tuple[SlideFacts, NDArray[np.uint8]]:
    """The bounded part (in the child process): the slide's facts and its lowest level."""
    return read_facts(path, name), source_lowest_level(path)


@dataclass(frozen=True)
class StandaloneRisk:
    risk: CohortRisk
    taxonomy: tuple[SlideTaxonomy, ...]
    skipped: tuple[str, ...]  # slide pseudonyms whose file could not be read

    def markdown(self) -> str:
        tax = [t.model_dump(mode="json") for t in self.taxonomy]
        md = risk_markdown(self.risk, tax, title="Re-identification risk (standalone)")
        if self.skipped:
            md += f"\n{len(self.skipped)} slide(s) could not be read: {', '.join(self.skipped)}\n"
        return md


def run_standalone(
    cohort_csv: Path,
    policies_dir: Path,
    profile: str,
    slides_dir: Path | None = None,
    population_csv: Path | None = None,
    bound: Bound | None = None,
) -> StandaloneRisk:
    policies = load_policies(policies_dir, profile)
    source = read_cohort(cohort_csv)
    pseudo = Pseudonymizer(secrets.token_bytes(32))
    table = build_release_table(source, policies.metadata, pseudo).table
    features = {}
    taxonomy = []
    skipped = []
    slide_src = next((c for c, r in policies.metadata.columns.items() if r.kind == "s"), "slide")
    if slides_dir is not None:
        bound = Bound.of(Settings()) if bound is None else bound
        for rel, pseudonym in zip(source[slide_src], table["slide"], strict=True):
            path = slides_dir / str(rel)
            try:  # read in the bounded child, as in a release
                facts, img = run_bounded(bound, pseudonym, _slide_inputs, path, str(rel))
                plan = plan_deid(facts, policies.deid_for(facts.format), pseudonym)
                detail = {
                    **summarize(plan),
                    "associated_images": len(facts.associated),
                }
                taxonomy.append(slide_taxonomy(pseudonym, detail))
                features[pseudonym] = features_for(img, policies.risk.image_linkage)
            except SlidegateError as exc:  # by pseudonym: the cohort path names a source file
                log.warning("slide %s skipped: %s", pseudonym, exc.reason)
                skipped.append(pseudonym)
            except OSError as exc:
                log.warning("slide %s skipped: unreadable (%s)", pseudonym, type(exc).__name__)
                skipped.append(pseudonym)
    population = None
    if population_csv is None and policies.risk.population is not None:
        population_csv = Path(policies.risk.population)
    if population_csv is not None:
        population = pd.read_csv(population_csv, dtype=str, keep_default_na=False)
    roles = column_roles(policies.metadata, policies.risk)
    risk = assess_cohort(
        table,
        policies.risk,
        policies.profile.risk_limits,
        policies.hierarchies,
        quasi_identifiers=roles.quasi_identifiers,
        features=features,
        population=population,
    )
    return StandaloneRisk(risk, tuple(taxonomy), tuple(skipped))


def write_outputs(result: StandaloneRisk, out: Path) -> None:
    import json

    out.mkdir(parents=True, exist_ok=True)
    data = result.risk.to_dict()
    data["taxonomy"] = [t.model_dump(mode="json") for t in result.taxonomy]
    (out / "risk.json").write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    (out / "risk.md").write_text(result.markdown(), encoding="utf-8")
    risk_plot_png(result.risk, out / "risk.png")
