from __future__ import annotations

from pathlib import Path

import pytest

from slidegate.deid import load_deid_policy
from slidegate.errors import PolicyError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deid.yaml"
    path.write_text(text)
    return path


def test_shipped_policies_load(policies_dir: Path) -> None:
    svs = load_deid_policy(policies_dir / "deid" / "svs.yaml")
    assert svs.format == "svs" and svs.default == "drop"
    assert svs.fields["aperio.MPP"].action == "keep"
    assert svs.fields["aperio.Date"].coarsen == "year"
    assert svs.fields["aperio.Filename"].class_ == "name"
    tiff = load_deid_policy(policies_dir / "deid" / "tiff.yaml")
    assert tiff.format == "tiff"
    assert all(rule.action == "drop" for rule in tiff.fields.values())


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "format: svs\nfields:\n  aperio.MPP: {action: keep, clas: technical}\n")
    with pytest.raises(PolicyError, match="clas") as err:
        load_deid_policy(path)
    assert str(path) in str(err.value)
    with pytest.raises(PolicyError, match="unknown key 'labels'"):
        load_deid_policy(_write(tmp_path, "format: svs\nlabels: keep\n"))


def test_default_keep_rejected(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="default"):
        load_deid_policy(_write(tmp_path, "format: svs\ndefault: keep\n"))


def test_coarsen_needs_coarsen_and_only_with_coarsen(tmp_path: Path) -> None:
    bad = "format: svs\nfields:\n  aperio.Date: {action: coarsen, class: date}\n"
    with pytest.raises(PolicyError, match="coarsen"):
        load_deid_policy(_write(tmp_path, bad))
    bad = "format: svs\nfields:\n  aperio.Date: {action: keep, class: date, coarsen: year}\n"
    with pytest.raises(PolicyError, match="coarsen"):
        load_deid_policy(_write(tmp_path, bad))


def test_associated_images_cannot_be_kept(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="images"):
        load_deid_policy(_write(tmp_path, "format: svs\nimages: {keep: [pyramid, label]}\n"))


def test_bad_class_rejected(tmp_path: Path) -> None:
    bad = "format: svs\nfields:\n  aperio.MPP: {action: keep, class: harmless}\n"
    with pytest.raises(PolicyError, match="class"):
        load_deid_policy(_write(tmp_path, bad))


def test_exact_rule_wins_over_glob(tmp_path: Path) -> None:
    text = (
        "format: svs\nfields:\n"
        "  aperio.CustomField.*: {action: drop, class: free_text}\n"
        "  aperio.CustomField.Stain: {action: keep, class: technical, value: channel}\n"
    )
    policy = load_deid_policy(_write(tmp_path, text))
    found = policy.rule_for("aperio.CustomField.Stain")
    assert found is not None and found[1].action == "keep"
    found = policy.rule_for("aperio.CustomField.PatientName")
    assert found is not None and found[0] == "aperio.CustomField.*"
    assert policy.rule_for("aperio.Unheard") is None
