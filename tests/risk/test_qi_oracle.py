"""Prosecutor risk, k-anonymity and distinct l-diversity against independent oracles, on tables
where patients have several rows (slides) with different values.

The definition (slidegate/risk/kanon.py): a patient is linkable through ANY of their published
rows; a row's class is the set of distinct patients with a row holding the same QI tuple; a
patient's class size is their smallest row class. Two oracles:

- a plain-Python implementation of that definition (dicts of tuples, no pandas grouping);
- pyCANON (its numpy/pandas pins clash with ours: it runs in its own venv, `make test` builds it
  as .venv-oracle and sets SLIDEGATE_PYCANON_PYTHON) on the table de-duplicated on
  (patient, QIs), where its row classes are exactly our patient-counted classes: its k and
  l-diversity, and its equivalence classes (get_equiv_class) for the prosecutor max and mean.
  Once against the pure functions, once against `slidegate risk` (the CLI's risk.json).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slidegate.pseudonym import Pseudonymizer
from slidegate.risk.kanon import equivalence_class_sizes, k_anonymity, prosecutor_risk
from slidegate.risk.qi import l_diversity, qi_figures

QI = ["age", "sex", "diagnosis", "site", "collection_year"]
P = Pseudonymizer(b"o" * 32)
COMMON = [("C18.7", "colon"), ("C20", "rectum")]
RARE = [("C49.4", "soft tissue"), ("D48.1", "connective tissue"), ("C74.0", "adrenal gland")]


def patients(seed: int, n: int, rare_share: float) -> list[dict[str, object]]:
    """Source-like patients: exact age, sex, and 1-4 slides; a later slide may carry another
    diagnosis (a rare one with `rare_share`), another site or another collection year."""
    rng = np.random.default_rng(seed)
    out = []
    for h in range(n):
        age = int(rng.integers(50, 70))
        sex = "F" if rng.random() < 0.5 else "M"
        dx, site = COMMON[int(rng.integers(len(COMMON)))]
        year = 2018 + int(rng.integers(2))
        slides = []
        for s in range(int(rng.integers(1, 5))):
            if s and rng.random() < rare_share:
                dx, site = RARE[int(rng.integers(len(RARE)))]
            if s and rng.random() < 0.3:
                year += 1
            slides.append((dx, site, f"{year}-0{1 + s}-1{s}"))
        out.append({"id": f"{seed}-{h}", "age": age, "sex": sex, "slides": slides})
    return out


def released(seed: int, n: int, rare_share: float) -> pd.DataFrame:
    """The released-table shape (ages in bands of 10, years), as build_release_table makes it."""
    rows = []
    for p in patients(seed, n, rare_share):
        low = int(p["age"]) // 10 * 10  # type: ignore[call-overload]
        for s, (dx, site, date) in enumerate(p["slides"]):  # type: ignore[arg-type]
            rows.append(
                (
                    P("s", f"{p['id']}/{s}"),
                    P("p", str(p["id"])),
                    f"{low}-{low + 9}",
                    p["sex"],
                    dx,
                    site,
                    date[:4],
                )
            )
    return pd.DataFrame(rows, columns=["slide", "patient", *QI])


TABLES = {
    "one-row-each": (1, 150, 0.0),
    "mixed": (2, 80, 0.15),
    "rare-later-slides": (3, 30, 0.5),
    "small": (4, 7, 0.3),
}


def oracle(rows: list[dict[str, str]], qis: list[str], sensitive: str):  # type: ignore[no-untyped-def]
    holders: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for r in rows:
        holders[tuple(r[q] for q in qis)].add(r["patient"])
    size: dict[str, int] = {}
    for r in rows:
        n = len(holders[tuple(r[q] for q in qis)])
        size[r["patient"]] = min(size.get(r["patient"], n), n)
    others = [q for q in qis if q != sensitive]
    values: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for r in rows:
        values[tuple(r[q] for q in others)].add(r[sensitive])
    return size, min(size.values()), min(len(v) for v in values.values()), len(holders)


def test_a_later_slide_with_a_rare_value_makes_its_patient_unique() -> None:
    table = released(*TABLES["rare-later-slides"])
    first_rows_only = table.drop_duplicates("patient")
    assert k_anonymity(table, QI, "patient") == 1
    by_any = prosecutor_risk(table, QI, "patient")
    by_first = prosecutor_risk(first_rows_only, QI, "patient")
    worse = [p for p in by_any.index if by_any[p] > by_first[p]]
    assert worse  # the table has patients a first-row-only score under-rates
    several = table.groupby("patient")["diagnosis"].nunique()
    assert (several > 1).any()  # and patients whose rows differ


@pytest.mark.parametrize("name", sorted(TABLES))
def test_prosecutor_k_and_l_equal_the_oracle(name: str, tmp_path: Path) -> None:
    table = released(*TABLES[name])
    path = tmp_path / f"{name}.csv"
    table.to_csv(path, index=False)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    size, k, ell, n_classes = oracle(rows, QI, "diagnosis")
    sizes = equivalence_class_sizes(table, QI, "patient")
    assert sizes.to_dict() == size
    risk = prosecutor_risk(table, QI, "patient")
    assert risk.to_dict() == pytest.approx({p: 1 / n for p, n in size.items()})
    assert k_anonymity(table, QI, "patient") == k
    assert l_diversity(table, QI, "diagnosis", "patient") == ell
    figures = qi_figures(table, QI, "patient", sensitive="diagnosis")
    assert figures.k == k and figures.l_diversity == ell
    assert figures.prosecutor_max == pytest.approx(1 / k)
    assert figures.prosecutor_mean == pytest.approx(np.mean([1 / n for n in size.values()]))
    assert figures.n_classes == n_classes
    print(f"{name}: patients {len(size)}, rows {len(rows)}, k {k}, l {ell}")


def test_journalist_risk_uses_population_counts() -> None:
    table = released(*TABLES["small"])
    population = table[QI].drop_duplicates().assign(count=50)
    figures = qi_figures(table, QI, "patient", population=population)
    assert figures.journalist_max == pytest.approx(1 / 50)
    assert figures.marketer == pytest.approx(1 / 50)
    # a row tuple missing from the population counts falls back to the sample class size
    figures = qi_figures(table, QI, "patient", population=population.iloc[1:])
    assert figures.journalist_max is not None and figures.journalist_max > 1 / 50


PYCANON_SCRIPT = """
import sys, json, pandas as pd
from pycanon import anonymity
from pycanon.anonymity.utils.aux_anonymity import get_equiv_class
qi, sensitive = json.loads(sys.argv[1]), sys.argv[2]
out = {}
for path in sys.argv[3:]:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = df[["patient", *qi]].drop_duplicates().reset_index(drop=True)
    size = {}
    for ec in get_equiv_class(df, qi):
        for i in ec:
            p = df.loc[i, "patient"]
            size[p] = min(size.get(p, len(ec)), len(ec))
    risks = [1 / n for n in size.values()]
    others = [q for q in qi if q != sensitive]
    out[path] = {
        "k": int(anonymity.k_anonymity(df, qi)),
        "l": int(anonymity.l_diversity(df, others, [sensitive])),
        "prosecutor_max": max(risks),
        "prosecutor_mean": sum(risks) / len(risks),
    }
print(json.dumps(out))
"""


def pycanon(paths: list[Path]) -> dict[str, dict[str, float]]:
    python = os.environ.get("SLIDEGATE_PYCANON_PYTHON")
    if not python:
        pytest.skip("SLIDEGATE_PYCANON_PYTHON not set (make test builds .venv-oracle)")
    run = subprocess.run(
        [python, "-c", PYCANON_SCRIPT, json.dumps(QI), "diagnosis", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, dict[str, float]] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def test_against_pycanon(tmp_path: Path) -> None:
    """pyCANON itself on the released tables (several rows per patient, differing values)."""
    paths, expected = [], {}
    for name, args in TABLES.items():
        table = released(*args)
        path = tmp_path / f"{name}.csv"
        table.to_csv(path, index=False)
        paths.append(path)
        f = qi_figures(table, QI, "patient", sensitive="diagnosis")
        expected[str(path)] = {
            "k": f.k,
            "l": f.l_diversity,
            "prosecutor_max": f.prosecutor_max,
            "prosecutor_mean": f.prosecutor_mean,
        }
    got = pycanon(paths)
    for path, want in expected.items():
        assert got[path] == pytest.approx(want, abs=1e-12), path


def source_cohort(path: Path, seed: int, n: int, rare_share: float) -> None:
    """A cohort CSV as a steward writes it (exact ages and dates, source identifiers)."""
    lines = ["slide,patient,block,specimen,age,sex,diagnosis,site,collection_date"]
    for p in patients(seed, n, rare_share):
        for s, (dx, site, date) in enumerate(p["slides"]):  # type: ignore[arg-type]
            lines.append(
                f"slides/{p['id']}-{s}.svs,PAT{p['id']},B{p['id']}-{s % 2},S{p['id']},"
                f"{p['age']},{p['sex']},{dx},{site},{date}"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("profile", ["open-access", "controlled-access"])
def test_slidegate_risk_cli_agrees_with_pycanon(
    tmp_path: Path, policies_dir: Path, profile: str
) -> None:
    """`slidegate risk COHORT.csv` scores the released table; pyCANON on that table (built with
    any key: pseudonyms do not change the classes) gives the same k, prosecutor max/mean, l."""
    from flows.cli import main
    from slidegate.cohort import build_release_table, read_cohort
    from slidegate.profile import load_policies

    cohort = tmp_path / "cohort.csv"
    source_cohort(cohort, 5, 60, 0.2)
    out = tmp_path / "out"
    main(["risk", str(cohort), "--profile", profile, "--out", str(out)])
    report = json.loads((out / "risk.json").read_text())
    assert report["quasi_identifiers"] == QI  # collection_year included
    pol = load_policies(policies_dir, profile)
    table = build_release_table(read_cohort(cohort), pol.metadata, Pseudonymizer(b"x" * 32)).table
    assert table.groupby("patient")["collection_year"].nunique().max() > 1
    path = tmp_path / "released.csv"
    table.to_csv(path, index=False)
    got = pycanon([path])[str(path)]
    before = report["qi_before"]
    assert before["n_patients"] == table["patient"].nunique()
    assert got == pytest.approx(
        {
            "k": before["k"],
            "l": before["l_diversity"],
            "prosecutor_max": before["prosecutor_max"],
            "prosecutor_mean": before["prosecutor_mean"],
        },
        abs=1e-12,
    )
