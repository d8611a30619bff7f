"""A bad spec, cohort or policy fails before any work, naming the row, file or key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slidegate.errors import PolicyError, SpecError
from slidegate.profile import load_policies
from slidegate.spec import load_spec

HEADER = "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date\n"


def make(tmp_path: Path, rows: list[str], **spec_extra: str) -> Path:
    source = tmp_path / "slides"
    source.mkdir()
    (source / "a.svs").write_bytes(b"x")
    (source / "b.svs").write_bytes(b"y")
    (tmp_path / "outside.svs").write_bytes(b"z")
    (tmp_path / "cohort.csv").write_text(HEADER + "".join(r + "\n" for r in rows))
    fields = {
        "release": "r1",
        "source": "slides",
        "cohort": "cohort.csv",
        "profile": "open-access",
        "target": "out",
        **spec_extra,
    }
    spec = tmp_path / "spec.yaml"
    spec.write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    return spec


ROW = ",P1,B1,S1,61,F,C18.7,colon,2019-03-01"


def test_good_spec_resolves_paths(tmp_path: Path) -> None:
    resolved = load_spec(make(tmp_path, ["a.svs" + ROW, "b.svs" + ROW]))
    assert [s.slide_id for s in resolved.slides] == ["a.svs", "b.svs"]
    assert resolved.slides[0].path == (tmp_path / "slides" / "a.svs").resolve()
    assert resolved.target == str((tmp_path / "out").resolve())


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (["../outside.svs" + ROW], "row 1: slide path points outside the source folder"),
        (["a.svs" + ROW, "missing.svs" + ROW], "row 2: slide .* does not exist"),
        (["a.svs" + ROW, "./a.svs" + ROW], "row 2: duplicate slide, the same file as row 1"),
        (["/etc/passwd" + ROW], "row 1: slide path points outside"),
    ],
)
def test_bad_cohort_rows_fail_naming_the_row(
    tmp_path: Path, rows: list[str], expected: str
) -> None:
    with pytest.raises(SpecError, match=expected):
        load_spec(make(tmp_path, rows))


def test_unknown_spec_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="unknown key 'taget'"):
        load_spec(make(tmp_path, ["a.svs" + ROW], taget="x"))


def test_target_inside_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="inside the source folder"):
        load_spec(make(tmp_path, ["a.svs" + ROW], target="slides/out"))


def test_bad_release_id(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="release id"):
        load_spec(make(tmp_path, ["a.svs" + ROW], release="'../x'"))


def test_shipped_profiles_load(policies_dir: Path) -> None:
    for profile in sorted((policies_dir / "profiles").glob("*.yaml")):
        policies = load_policies(policies_dir, profile.stem)
        assert set(policies.deid) >= {"svs", "tiff"}


def test_profile_with_unknown_key_fails_naming_file_and_key(
    tmp_path: Path, policies_dir: Path
) -> None:
    copy = tmp_path / "policies"
    shutil.copytree(policies_dir, copy)
    path = copy / "profiles" / "open-access.yaml"
    path.write_text(path.read_text() + "aproval: manual\n")
    with pytest.raises(PolicyError, match=r"open-access.yaml.*unknown key 'aproval'"):
        load_policies(copy, "open-access")


def test_unknown_profile_lists_known_ones(policies_dir: Path) -> None:
    with pytest.raises(PolicyError, match=r"not found.*open-access"):
        load_policies(policies_dir, "nope")
