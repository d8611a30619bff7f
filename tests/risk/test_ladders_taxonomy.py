"""Hierarchies as data (policies/risk/hierarchies.yaml) and the per-slide taxonomy inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidegate.risk.hierarchy import GeneralisationError
from slidegate.risk.ladders import load_hierarchies
from slidegate.risk.taxonomy import slide_taxonomy, table_taxonomy
from slidegate.validate.policy import load_metadata_policy


@pytest.fixture(scope="module")
def hier(policies_dir: Path):  # type: ignore[no-untyped-def]
    return load_hierarchies(policies_dir / "risk" / "hierarchies.yaml")


@pytest.mark.parametrize(
    ("ladder", "value", "steps"),
    [
        ("age", "62", ["62", "60-64", "60-69", "60-79", "*"]),
        ("age", "95", ["90+", "90+", "90+", "90+", "*"]),
        ("date", "2019-03-14", ["2019-03-14", "2019-03", "2019", "2015-2019", "*"]),
        ("icd10", "C18.7", ["C18.7", "C18", "C15-C26", "C00-D48", "*"]),
        ("icd10", "D48.1", ["D48.1", "D48", "D37-D48", "C00-D48", "*"]),
        ("site", "sigmoid colon", ["sigmoid colon", "colon", "*"]),
    ],
)
def test_every_level(hier, ladder: str, value: str, steps: list[str]) -> None:  # type: ignore[no-untyped-def]
    lad = hier.get(ladder)
    assert [lad.generalise(value, level) for level in lad.levels] == steps


def test_already_generalised_values_climb(hier) -> None:  # type: ignore[no-untyped-def]
    assert hier.age.generalise("80-89", "band20") == "80-89"  # capped below the top code 90
    assert hier.age.generalise("40-49", "band20") == "40-59"
    assert hier.date.generalise("2019", "year5") == "2015-2019"
    assert hier.icd10.generalise("C15-C26", "chapter") == "C00-D48"
    assert hier.site.generalise("", "organ") == ""  # missing stays missing
    with pytest.raises(GeneralisationError) as err:
        hier.age.generalise("60-69", "band5")  # cannot be made finer
    assert "60" not in str(err.value)
    with pytest.raises(GeneralisationError):
        hier.icd10.generalise("colon cancer", "category")


def test_taxonomy_flags_identifying_parts_left() -> None:
    clean = slide_taxonomy(
        "s-0000000000000001",
        {
            "associated_images": 3,
            "images_dropped.label": 1,
            "images_dropped.macro": 1,
            "images_dropped.thumbnail": 1,
            "dropped.name": 2,
            "coarsened.date": 1,
            "kept.technical": 9,
        },
    )
    assert clean.clean and clean.images["label"] == "dropped (1)"
    assert clean.metadata["date"] == {"dropped": 0, "coarsened": 1, "kept": 0}
    dirty = slide_taxonomy(
        "s-0000000000000002",
        {
            "associated_images": 2,
            "images_dropped.macro": 1,
            "kept.operator": 1,
            "kept.date": 1,
            "kept.technical": 3,
        },
    )
    assert not dirty.clean
    assert dirty.left == (
        "1 associated image(s) not dropped",
        "1 metadata field(s) of class 'date' kept",
        "1 metadata field(s) of class 'operator' kept",
    )


def test_table_taxonomy(policies_dir: Path) -> None:
    policy = load_metadata_policy(policies_dir / "metadata" / "cohort.yaml")
    out = table_taxonomy(policy, ["slide", "patient", "age", "sex", "notes"])
    assert out["patient"] == "replaced by a keyed pseudonym"
    assert out["age"].startswith("generalised (age to band10)")
    assert out["notes"] == "dropped"
