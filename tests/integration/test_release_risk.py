"""An open-access release through the flow: the published cohort.csv, read alone, is
k-anonymous for the profile's k over every column that is not a pseudonym, collection_year
included, counted by patient; a patient unique through a later slide's row is not in it."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import pytest

from slidegate.profile import load_policies
from slidegate.pseudonym import PSEUDONYM_RE
from tests.releasing import release_folder

pytestmark = pytest.mark.integration


def k_from_file(path: Path) -> tuple[int, list[str], int]:
    """(k, the columns scored, rows) from the CSV alone: pseudonym columns are those whose every
    value is a pseudonym; k = fewest distinct patients holding one published value tuple."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "the release published no row"
    pseudonyms = {c for c in rows[0] if all(PSEUDONYM_RE.match(r[c]) for r in rows)}
    scored = [c for c in rows[0] if c not in pseudonyms]
    holders: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for r in rows:
        holders[tuple(r[c] for c in scored)].add(r["patient"])
    return min(len(h) for h in holders.values()), scored, len(rows)


def test_open_access_cohort_csv_is_k_anonymous_over_every_published_column(
    prefect_server: object, tmp_path: Path, policies_dir: Path
) -> None:
    from slidegate.synth import generate_cohort

    synth = generate_cohort(
        tmp_path / "synth", slides=22, patients=22, seed=5, base_size=(256, 384)
    )
    with synth.cohort_csv.open(newline="") as fh:
        files = [r["slide"] for r in csv.DictReader(fh)]
    # 20 patients alike (60-69, F, C18.7, colon, 2019), one slide each; patient X's first slide
    # is alike too, its second carries a rare diagnosis and another year: X is unique through it
    rows = [
        f"{files[n]},RPAT{n:03d},RBLK{n:03d},RSPC{n:03d},{61 + n % 9},F,C18.7,colon,"
        f"2019-0{1 + n % 9}-1{n % 9}"
        for n in range(20)
    ]
    rows += [
        f"{files[20]},RPATX,RBLKX1,RSPCX1,64,F,C18.7,colon,2019-04-02",
        f"{files[21]},RPATX,RBLKX2,RSPCX2,64,F,C49.4,soft tissue,2021-08-30",
    ]
    result, release = release_folder(
        tmp_path, synth.slides_dir, "risk-open", rows, profile="open-access"
    )
    assert result["published"] is True, result
    limits = load_policies(policies_dir, "open-access").profile.risk_limits
    k_profile = math.ceil(limits.p_attack / limits.max_risk - 1e-9)  # R >= P(attack) / |EC|
    assert k_profile == 12
    k, scored, n_rows = k_from_file(release / "cohort.csv")
    assert scored == ["age", "sex", "diagnosis", "site", "collection_year"]
    # X's rare row is never published: X suppressed (20 rows), or capped to its common slide
    # (21 rows) when the cap keeps that one (the cap's choice among equally linkable slides
    # follows the release's fresh pseudonyms)
    assert k >= k_profile and n_rows in (20, 21), (k, n_rows)
    text = (release / "cohort.csv").read_text(encoding="utf-8")
    assert "C49.4" not in text and "2021" not in text  # X's unique row is not published
