"""Prosecutor risk, k-anonymity and distinct l-diversity against an independent oracle.

pyCANON (the issue's suggested oracle) cannot be installed beside slidegate's pins: pycanon
1.3.6 pins numpy==2.0.2 and pandas==2.3.3 exactly (slidegate: numpy 2.4.6, pandas 3.1.1). So the
oracle here is a direct, plain-Python implementation of the definitions (dicts of tuples, no
pandas grouping), run on generated tables including one with rare diagnoses. The same tables
were cross-checked once with pyCANON in a separate virtual environment (see the report).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slidegate.pseudonym import Pseudonymizer
from slidegate.risk.kanon import equivalence_class_sizes, k_anonymity, prosecutor_risk
from slidegate.risk.qi import l_diversity, qi_figures

QI = ["age", "sex", "diagnosis", "site"]
P = Pseudonymizer(b"o" * 32)
COMMON = [("C18.7", "colon"), ("C20", "rectum"), ("C50.9", "breast"), ("C34.1", "lung")]
RARE = [("C49.4", "soft tissue"), ("D48.1", "connective tissue"), ("C74.0", "adrenal gland")]


def generated(seed: int, patients: int, rare_share: float) -> pd.DataFrame:
    """Released-table shape: several rows (slides) per patient, generalised ages."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(patients):
        rare = rng.random() < rare_share
        pool = RARE if rare else COMMON[:2]
        dx = pool[int(rng.integers(len(pool)))][0]
        site = "soft tissue" if rare else ("colon", "rectum")[int(rng.integers(2))]
        low = 10 * int(rng.integers(5, 7))
        age = f"{low}-{low + 9}"
        sex = "F" if rng.random() < 0.5 else "M"
        for s in range(int(rng.integers(1, 4))):
            rows.append((P("s", f"{seed}/{h}/{s}"), P("p", f"{seed}/{h}"), age, sex, dx, site))
    return pd.DataFrame(rows, columns=["slide", "patient", *QI])


TABLES = {
    "common-only": (1, 150, 0.0),
    "mixed": (2, 80, 0.1),
    "rare-diagnoses": (3, 30, 0.4),
    "small": (4, 7, 0.2),
}


def oracle(rows: list[dict[str, str]], qis: list[str], sensitive: str):  # type: ignore[no-untyped-def]
    first: dict[str, dict[str, str]] = {}
    for r in rows:
        first.setdefault(r["patient"], r)
    classes: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for p, r in first.items():
        classes[tuple(r[q] for q in qis)].append(p)
    size = {p: len(members) for members in classes.values() for p in members}
    others = [q for q in qis if q != sensitive]
    values: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for r in first.values():
        values[tuple(r[q] for q in others)].add(r[sensitive])
    return size, min(size.values()), min(len(v) for v in values.values())


@pytest.mark.parametrize("name", sorted(TABLES))
def test_prosecutor_k_and_l_equal_the_oracle(name: str, tmp_path: Path) -> None:
    table = generated(*TABLES[name])
    path = tmp_path / f"{name}.csv"
    table.to_csv(path, index=False)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    size, k, ell = oracle(rows, QI, "diagnosis")
    sizes = equivalence_class_sizes(table, QI, "patient")
    assert sizes.to_dict() == size
    risk = prosecutor_risk(table, QI, "patient")
    assert risk.to_dict() == pytest.approx({p: 1 / n for p, n in size.items()})
    assert k_anonymity(table, QI, "patient") == k
    assert l_diversity(table, QI, "diagnosis", "patient") == ell
    figures = qi_figures(table, QI, "patient", sensitive="diagnosis")
    assert figures.k == k and figures.l_diversity == ell
    assert figures.prosecutor_max == pytest.approx(1 / k)
    assert figures.n_classes == len({tuple(r[q] for q in QI) for r in rows})
    print(f"{name}: patients {len(size)}, k {k}, l {ell}, max prosecutor {1 / k:.3f}")


def test_rare_table_has_unique_patients() -> None:
    table = generated(*TABLES["rare-diagnoses"])
    assert k_anonymity(table, QI, "patient") == 1  # the rare diagnoses make singletons


def test_journalist_risk_uses_population_counts() -> None:
    table = generated(*TABLES["small"])
    firsts = table.drop_duplicates("patient")
    population = firsts[QI].drop_duplicates().assign(count=50)
    figures = qi_figures(table, QI, "patient", population=population)
    assert figures.journalist_max == pytest.approx(1 / 50)
    assert figures.marketer == pytest.approx(1 / 50)
    # a class missing from the population counts falls back to the sample class size
    figures = qi_figures(table, QI, "patient", population=population.iloc[1:])
    assert figures.journalist_max == pytest.approx(1.0) or figures.journalist_max > 1 / 50


PYCANON_SCRIPT = """
import sys, json, pandas as pd
from pycanon import anonymity
out = {}
for path in sys.argv[1:]:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    out[path] = [anonymity.k_anonymity(df, ["age", "sex", "diagnosis", "site"]),
                 anonymity.l_diversity(df, ["age", "sex", "site"], ["diagnosis"])]
print(json.dumps(out))
"""


def test_against_pycanon_when_available(tmp_path: Path) -> None:
    """pyCANON itself, run in a separate interpreter (its pins clash with ours): set
    SLIDEGATE_PYCANON_PYTHON to a Python that has pycanon installed."""
    import json
    import os
    import subprocess

    python = os.environ.get("SLIDEGATE_PYCANON_PYTHON")
    if not python:
        pytest.skip("SLIDEGATE_PYCANON_PYTHON not set (pycanon cannot share our venv)")
    paths, expected = [], {}
    for name, args in TABLES.items():
        table = generated(*args)
        path = tmp_path / f"{name}.csv"
        table.drop_duplicates("patient").to_csv(path, index=False)  # one record per patient
        paths.append(str(path))
        expected[str(path)] = [
            k_anonymity(table, QI, "patient"),
            l_diversity(table, QI, "diagnosis", "patient"),
        ]
    run = subprocess.run(
        [python, "-c", PYCANON_SCRIPT, *paths], capture_output=True, text=True, check=True
    )
    assert json.loads(run.stdout.strip().splitlines()[-1]) == expected
