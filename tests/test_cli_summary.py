"""The command line's contract (issue 14 item 4): exit codes in one place, `--version`,
`--json` (schema slidegate.run-summary/1), -v/-q, and the end-of-run reasons as structured
codes. Real release runs with --json: tests/registry/test_release_registry.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import slidegate
from flows import cli, exitcodes
from flows.runsummary import SCHEMA, reason_code, summary, top_reasons
from slidegate.errors import (
    CorruptSlideError,
    EgressBlocked,
    PolicyError,
    PolicyViolation,
    SpecError,
    TransientIOError,
)

REPO = Path(__file__).resolve().parents[1]
KEYS = {"schema", "command", "release", "outcome", "exit_code", "target", "counts", "reasons",
        "error", "work", "ui"}  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "reason", "code"),
    [
        ("audit", "audit: identifying value found in output (canary#1)",
         "audit.identifying-value-found"),
        ("decide", "risk [risk.max_risk]: R 0.61 > 0.50 (r_qi 0.50: smallest class 1)",
         "risk.max_risk"),
        ("decide", "ledger: slide published before in release wa-1 as s-0123456789abcdef (key "
         "0a1b2c3d4e5f)", "ledger.slide-published-before"),
        ("failed", "egress: egress.canary, egress.field-name", "egress.canary"),
        ("failed", "time limit exceeded (600 s per slide)", "failed.time-limit-exceeded"),
        ("failed", "internal error (KeyError)", "failed.internal-error"),
        ("inventory", "corrupt", "inventory.corrupt"),
        ("inventory", None, "inventory.unspecified"),
    ],
)  # fmt: skip
def test_reason_codes_are_structured(stage: str, reason: str | None, code: str) -> None:
    assert reason_code(stage, reason) == code


def test_top_reasons_most_frequent_first_at_most_five() -> None:
    slides = [{"status": "quarantined", "stage": "inventory", "reason": "corrupt"}] * 3
    slides += [
        {"status": "quarantined", "stage": "failed", "reason": f"oops {c}"} for c in "abcdef"
    ]
    slides += [{"status": "withheld", "stage": "decide", "reason": "risk [risk.cap]: cap 1"}]
    slides += [{"status": "approved", "stage": "decide", "reason": None}]
    top = top_reasons(slides)
    assert top["withheld"] == [{"code": "risk.cap", "count": 1}]
    assert top["quarantined"][0] == {"code": "inventory.corrupt", "count": 3}
    assert len(top["quarantined"]) == 5


def test_exit_codes_from_errors_and_results() -> None:
    assert exitcodes.for_error(SpecError("x")) == exitcodes.SPEC == exitcodes.USAGE == 2
    assert exitcodes.for_error(PolicyError("x")) == 2
    assert exitcodes.for_error(PolicyViolation("withheld")) == exitcodes.WITHHELD
    assert exitcodes.for_error(EgressBlocked("r/k", {"egress.canary"})) == exitcodes.WITHHELD
    assert exitcodes.for_error(TransientIOError("x")) == exitcodes.FAILURE
    assert exitcodes.for_error(CorruptSlideError("x")) == exitcodes.FAILURE
    assert exitcodes.for_error(KeyError("x")) == exitcodes.FAILURE
    assert exitcodes.for_error(KeyboardInterrupt()) == exitcodes.INTERRUPTED
    ok = {"approved": 2, "withheld": 1, "quarantined": 0}
    assert exitcodes.for_result({"published": True, "counts": ok}) == exitcodes.OK
    bad = dict(ok, quarantined=1)
    assert exitcodes.for_result({"published": True, "counts": bad}) == exitcodes.QUARANTINED_SOME
    assert exitcodes.for_result({"published": False, "counts": bad}) == exitcodes.QUARANTINED_SOME
    none = {"approved": 0, "withheld": 3, "quarantined": 0}
    assert exitcodes.for_result({"published": False, "counts": none}) == exitcodes.WITHHELD
    assert exitcodes.for_result({"rejected": True, "counts": ok}) == exitcodes.WITHHELD
    codes = [c for c, _ in exitcodes.TABLE]
    assert len(set(codes)) == len(codes)


def test_version_and_help_document_exit_codes() -> None:
    run = subprocess.run([sys.executable, "-m", "flows.cli", "--version"], cwd=REPO,
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0 and run.stdout.strip() == f"slidegate {slidegate.__version__}"
    text = cli.build_parser().format_help()
    assert "exit codes:" in text
    for code, _ in exitcodes.TABLE:
        assert f"\n  {code:<4} " in text
    assert "--json" in text and "-q, --quiet" in text


def test_quiet_and_verbose_exclusive_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["list", "x", "-q", "-v"])
    assert exit_.value.code == exitcodes.USAGE


def test_json_on_a_spec_error_is_one_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("release: r1\nsource: nope\ncohort: c.csv\nprofile: open-access\ntarget: o\n")
    monkeypatch.setattr(cli, "_server", lambda *a, **k: pytest.fail("server started"))
    monkeypatch.setenv("SLIDEGATE_WORK_DIR", str(tmp_path / "work"))
    assert cli.main(["release", str(spec), "--json"]) == exitcodes.SPEC
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert set(doc) == KEYS and doc["schema"] == SCHEMA
    assert doc["outcome"] == "error" and doc["exit_code"] == exitcodes.SPEC
    assert doc["error"]["category"] == "spec" and doc["counts"]["approved"] == 0
    assert err.startswith("slidegate: error: ") and "Traceback" not in err


def test_summary_schema_keys_with_reasons(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "slides.json").write_text(json.dumps([
        {"slide": "s-0123456789abcdef", "status": "approved", "stage": "decide", "reason": None},
        {"slide": "s-1123456789abcdef", "status": "quarantined", "stage": "inventory",
         "reason": "corrupt"},
    ]))  # fmt: skip
    doc = summary(command="release", release="r1", outcome="published", exit_code=4,
                  work=tmp_path, target="out/r1")  # fmt: skip
    assert set(doc) == KEYS
    assert doc["counts"] == {"approved": 1, "withheld": 0, "quarantined": 1}
    assert doc["reasons"] == {"withheld": [], "quarantined": [
        {"code": "inventory.corrupt", "count": 1}]}  # fmt: skip
    json.dumps(doc)  # serialisable as is
