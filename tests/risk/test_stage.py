"""The risk stage inside a real release run (inventory, de-identify, audit, decide; no Prefect):
profiles, reports, ledger, study keys and validation gates on a synthetic cohort."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from slidegate.errors import SpecError
from slidegate.ledger import Ledger, record_release
from slidegate.pseudonym import load_or_create_key
from slidegate.settings import Settings
from slidegate.stages.context import key_path, prepare_release

from .conftest import run_stages, write_spec


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from slidegate.synth import generate_cohort

    root = tmp_path_factory.mktemp("risk-cohort")
    return generate_cohort(root, slides=8, patients=3, seed=11, base_size=(512, 768))


@pytest.fixture(scope="module")
def lenient(policies_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The policies with controlled access at P(attack) 0.05 (R <= 0.05 < 0.2: nothing withheld
    on risk), for the tests of the ledger and keys, which are not about the thresholds."""
    copy = tmp_path_factory.mktemp("lenient") / "policies"
    shutil.copytree(policies_dir, copy)
    path = copy / "profiles" / "controlled-access.yaml"
    text = path.read_text(encoding="utf-8")
    assert "  p_attack: 0.3\n" in text
    path.write_text(text.replace("  p_attack: 0.3\n", "  p_attack: 0.05\n"), encoding="utf-8")
    return copy


def rare_patient_slides(cohort) -> set[str]:  # type: ignore[no-untyped-def]
    table = pd.read_csv(cohort.cohort_csv, dtype=str)
    table["band"] = table["age"].astype(int) // 10
    firsts = table.drop_duplicates("patient")
    sizes = firsts.groupby(["sex", "diagnosis", "site", "band"])["patient"].transform("size")
    rare = set(firsts.loc[sizes == 1, "patient"])
    return set(table.loc[table["patient"].isin(rare), "slide"])


def test_profiles_differ_and_reports_are_written(cohort, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "work"
    # open access (EMA 0.09: classes of 12 and more) cannot release 3 patients at all
    ctx, opened = run_stages(write_spec(cohort.root, "p-open", "open-access"), work)
    assert all(s.status == "withheld" for s in opened.slides if s.status != "quarantined")
    assert all("risk" in (s.reason or "") for s in opened.slides if s.status == "withheld")
    assert opened.figures["passed"] == 0.0 and not opened.risk_passed
    pseudo = load_or_create_key(ctx.key_path)
    rare = {pseudo("s", "slides/" + s) for s in rare_patient_slides(cohort)}
    rare |= {pseudo("s", s) for s in rare_patient_slides(cohort)}
    # controlled access (El Emam 0.2): the unique patient (R 0.3) is withheld, the others not
    ctx_c, controlled = run_stages(write_spec(cohort.root, "p-ctrl", "controlled-access"), work)
    pseudo_c = load_or_create_key(ctx_c.key_path)
    statuses = {s.pseudonym: s for s in controlled.slides}
    rare_c = {pseudo_c("s", s) for s in rare_patient_slides(cohort)}
    rare_c = (rare_c | {pseudo_c("s", "slides/" + s) for s in rare_patient_slides(cohort)}) & set(
        statuses
    )
    assert rare_c and all(statuses[p].status == "withheld" for p in rare_c)
    assert all("risk.max_risk" in (statuses[p].reason or "") for p in rare_c)
    assert controlled.risk_passed and any(s.status == "approved" for s in controlled.slides)
    assert controlled.figures["withheld_patients"] == 1
    # the enclave (R <= P(attack) 0.05 < 0.2) withholds nobody
    _, enclave = run_stages(write_spec(cohort.root, "p-encl", "restricted"), work)
    assert all(s.status == "approved" for s in enclave.slides)
    reports = ctx.reports_dir
    data = json.loads((reports / "risk.json").read_text())
    actions = [s["action"] for s in data["steps"]]
    assert actions[0] == "assess" and "generalise" in actions and actions[-1] == "withhold"
    assert data["information_loss"] == 1.0 and "Iyengar" in data["loss_metric"]
    assert data["linkage_before"]["v_pi"] >= 0 and "chance" in data["linkage_before"]
    assert len(data["taxonomy"]) == 8 and all(t["left"] == [] for t in data["taxonomy"])
    assert (reports / "risk.png").read_bytes()[:4] == b"\x89PNG"
    assert (reports / "data-docs" / "index.html").is_file()
    print(f"\nV_pi on the cohort: {data['linkage_before']}")
    # nothing identifying in any report (canary values: ids, names, dates, device ids)
    canaries = json.loads(cohort.canaries_json.read_text())["canaries"]
    needles = {c["value"] for c in canaries if len(c["value"]) >= 6}
    for path in reports.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".html"):
            text = path.read_text("utf-8", errors="replace")
            assert not [n for n in needles if n in text], path


def test_ledger_flags_a_second_release_under_a_new_key(
    cohort, tmp_path: Path, lenient: Path
) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "work"
    ctx1, _ = run_stages(write_spec(cohort.root, "l-1", "controlled-access"), work, lenient)
    assert record_release(ctx1.settings, ctx1.work, "l-1", ctx1.key_id) == 8  # as finalize
    ctx2, second = run_stages(write_spec(cohort.root, "l-2", "controlled-access"), work, lenient)
    assert ctx2.key_id != ctx1.key_id  # a fresh key per release
    flagged = [s for s in second.slides if s.reason and s.reason.startswith("ledger:")]
    assert len(flagged) == 8 and all(s.status == "withheld" for s in flagged)
    assert "published before in release l-1" in (flagged[0].reason or "")
    risk = json.loads((ctx2.reports_dir / "risk.json").read_text())
    assert len(risk["ledger"]) == 8 and risk["ledger"][0]["kind"] == "rerelease"
    assert Ledger.open(ctx2.settings).releases() == ["l-1"]  # the registry's ledger
    assert not list(ctx2.reports_dir.rglob("*.sqlite"))  # the ledger stays private


def test_study_key_gives_stable_pseudonyms_and_no_rerelease_flag(
    cohort, tmp_path: Path, lenient: Path
) -> None:  # type: ignore[no-untyped-def]
    policies = tmp_path / "policies"
    shutil.copytree(lenient, policies)
    profile = policies / "profiles" / "controlled-access.yaml"
    text = profile.read_text().replace(
        "pseudonym_key:\n  mode: release", "pseudonym_key:\n  mode: study\n  study: crc"
    )
    profile.write_text(text)
    work = tmp_path / "work"
    ctx1, _ = run_stages(write_spec(cohort.root, "k-1", "controlled-access"), work, policies)
    record_release(ctx1.settings, ctx1.work, "k-1", ctx1.key_id)
    ctx2, second = run_stages(write_spec(cohort.root, "k-2", "controlled-access"), work, policies)
    assert ctx1.key_id == ctx2.key_id and ctx1.pseudonyms == ctx2.pseudonyms
    assert key_path(ctx2.settings, "k-2").is_file()
    assert all(s.status == "approved" for s in second.slides)  # same pseudonym: not flagged


def test_unknown_column_is_refused_before_any_slide_work(cohort, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    table = pd.read_csv(cohort.cohort_csv, dtype=str)
    table["mrn"] = "123"  # a column the metadata policy has no rule for
    table.to_csv(cohort.root / "unknown.csv", index=False)
    work = tmp_path / "work"
    with pytest.raises(SpecError, match=r"\['mrn'\] with no rule"):
        spec = write_spec(cohort.root, "unk", "restricted", cohort="unknown.csv")
        prepare_release(spec, Settings(work_dir=work))
    assert not any(work.rglob("*.zarr"))  # refused before any slide was converted


def test_name_like_and_date_like_values_block_validation(cohort, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    table = pd.read_csv(cohort.cohort_csv, dtype=str)
    table.loc[:, "site"] = "Smith, Johanna"  # a name where the site should be
    table.to_csv(cohort.root / "bad.csv", index=False)
    _, outcome = run_stages(
        write_spec(cohort.root, "bad", "restricted", cohort="bad.csv"), tmp_path / "work"
    )
    assert not outcome.validation_passed and not outcome.releasable
    text = " | ".join(outcome.blocking_failures)
    assert "column 'site'" in text and "no name-like value" in text
    assert "Smith" not in text and "Johanna" not in text
    table = pd.read_csv(cohort.cohort_csv, dtype=str)
    table.loc[:, "diagnosis"] = "C18.7 seen 2019-03-14"
    table.to_csv(cohort.root / "bad-date.csv", index=False)
    _, outcome = run_stages(
        write_spec(cohort.root, "bad-date", "restricted", cohort="bad-date.csv"),
        tmp_path / "work",
    )
    text = " | ".join(outcome.blocking_failures)
    assert "column 'diagnosis'" in text and "no date-like value" in text
    assert "2019-03-14" not in text


def test_a_slide_with_an_identifying_part_left_is_never_approved(policies_dir: Path) -> None:
    from slidegate.models import SlideReport
    from slidegate.profile import load_policies
    from slidegate.pseudonym import Pseudonymizer
    from slidegate.risk.pipeline import score_release

    p = Pseudonymizer(b"t" * 32)
    rows = pd.DataFrame(
        {
            "slide": [p("s", "a"), p("s", "b")],
            "patient": [p("p", "1"), p("p", "1")],
            "block": [p("b", "1"), p("b", "1")],
            "specimen": [p("x", "1"), p("x", "1")],
            "age": ["60-69", "60-69"],
            "sex": ["F", "F"],
            "diagnosis": ["C18.7", "C18.7"],
            "site": ["colon", "colon"],
            "collection_year": ["2019", "2019"],
        }
    )
    detail = {"associated_images": 1, "images_dropped.label": 1, "kept.technical": 2}
    reports = {
        s: SlideReport(slide_id=s, pseudonym=s, stage="audit", status="ok", detail=d)
        for s, d in ((rows.slide[0], detail), (rows.slide[1], {**detail, "kept.name": 1}))
    }
    stage = score_release(
        rows,
        reports,
        load_policies(policies_dir, "restricted"),
        list(rows.slide),
        source_columns=["slide", "patient", "notes"],
    )
    assert stage.decision(rows.slide[0]) == ("approved", None)
    status, reason = stage.decision(rows.slide[1])
    assert status == "withheld" and reason is not None
    assert reason.startswith("taxonomy: identifying part left (1 metadata field(s) of class 'name'")
    assert stage.to_dict()["associated_data"]["notes"] == "dropped"


def test_risk_cli_prints_the_report(cohort, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from flows.cli import main

    out = tmp_path / "risk-out"
    code = main(
        [
            "risk",
            str(cohort.cohort_csv),
            "--profile",
            "open-access",
            "--slides",
            str(cohort.slides_dir),
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 1  # open access withholds the 3-patient cohort (exit status 1)
    assert "# Re-identification risk (standalone)" in printed
    assert "| suppress |" in printed and "V_pi" in printed and "chance level" in printed
    assert {p.name for p in out.iterdir()} == {"risk.json", "risk.md", "risk.png"}
    canaries = json.loads(cohort.canaries_json.read_text())["canaries"]
    assert not [c for c in canaries if len(c["value"]) >= 6 and c["value"] in printed]
    assert main(["risk", str(cohort.cohort_csv), "--profile", "controlled-access"]) == 0
