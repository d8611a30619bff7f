"""Metadata policy: strict loading, consistency rules, the shipped cohort policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from slidegate.errors import PolicyError
from slidegate.validate.policy import load_metadata_policy
from slidegate.validate.suites import glob_regex


@pytest.fixture
def base(policies_dir: Path) -> dict:
    return yaml.safe_load((policies_dir / "metadata" / "cohort.yaml").read_text())


def load(tmp_path: Path, data: dict) -> None:
    path = tmp_path / "meta.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load_metadata_policy(path)


def test_shipped_policy(policies_dir: Path) -> None:
    policy = load_metadata_policy(policies_dir / "metadata" / "cohort.yaml")
    assert policy.released_columns() == [
        "slide", "patient", "block", "specimen", "age", "sex", "diagnosis", "site",
        "collection_year",
    ]  # fmt: skip
    assert policy.columns["age"].level == "band10"


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["columns"]["sex"].update(actoin="keep"), "unknown key 'columns.sex.actoin'"),
        (lambda d: d.update(unknown_columns="keep"), "'unknown_columns'"),
        (lambda d: d["output_metadata"].update(allow_keys=["x"]), "allow_keys"),
        (lambda d: d["columns"]["slide"].pop("kind"), "'kind'"),
        (lambda d: d["columns"]["sex"].update(kind="p"), "'kind'"),
        (lambda d: d["columns"]["age"].update(level="year"), "does not fit hierarchy 'age'"),
        (lambda d: d["columns"]["age"].update(level="band20"), "multiple of the band width 20"),
        (lambda d: d["columns"]["sex"]["expect"][0].update(regex="^x$"), "exactly one of"),
        (lambda d: d["columns"]["sex"]["expect"][0].update(severity="fatal"), "severity"),
        (lambda d: d["columns"]["site"]["expect"][0].update(regex="(["), "regular expression"),
        (lambda d: d["output_metadata"]["forbid_value_regex"].append("(x"), "regular expression"),
        (lambda d: d["columns"]["site"].update(rename="sex"), "collide"),
        (lambda d: d["columns"].update(name={"action": "drop", "rename": "n"}), "dropped column"),
    ],
)
def test_bad_policy_raises_naming_the_key(tmp_path: Path, base: dict, edit, needle: str) -> None:
    edit(base)
    with pytest.raises(PolicyError) as err:
        load(tmp_path, base)
    assert needle in str(err.value)


def test_year_passes_and_dates_trip_forbidden_regexes(policies_dir: Path) -> None:
    policy = load_metadata_policy(policies_dir / "metadata" / "cohort.yaml")
    forbid = [re.compile(p) for p in policy.output_metadata.forbid_value_regex]

    def tripped(v: str) -> bool:
        return any(p.search(v) for p in forbid)

    for fine in ("2009", "0.2520", "0.25200000000000000", "20", "40", "Aperio", "22727"):
        assert not tripped(fine), fine
    for dated in ("12/29/09", "07/24/2023", "2009-12-29", "2009:12:29 09:59:15", "09:59:15",
                  "03:21 PM", "20091229", "20091229095915.000"):  # fmt: skip
        assert tripped(dated), dated


def test_glob_regex() -> None:
    rx = re.compile(glob_regex(["aperio.AppMag", "*.Date", "openslide.mpp-*"]))
    for ok in ("aperio.AppMag", "aperio.Date", "hamamatsu.Date", "openslide.mpp-x"):
        assert rx.search(ok), ok
    for bad in ("aperio.AppMagX", "aperio.Filename", "xaperio.AppMag", "aperio.Date.x", "Date"):
        assert not rx.search(bad), bad


def test_allowed_keys_cover_every_key_the_deid_policies_emit(policies_dir: Path) -> None:
    policy = load_metadata_policy(policies_dir / "metadata" / "cohort.yaml")
    rx = re.compile(glob_regex(policy.output_metadata.allowed_keys))
    deid = sorted((policies_dir / "deid").glob("*.yaml"))
    assert deid, "no deid policies found"
    emitted = []
    for path in deid:
        fields = (yaml.safe_load(path.read_text()) or {}).get("fields") or {}
        for name, rule in fields.items():
            if rule.get("action") in ("keep", "coarsen"):
                emitted.append(rule.get("output_key") or name)
    assert emitted
    assert [k for k in emitted if not rx.search(k)] == []
    assert not rx.search("aperio.Date") and not rx.search("aperio.Filename")
